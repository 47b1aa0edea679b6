#ifndef SPOTQ_CRABBITMQ_SHIM_H
#define SPOTQ_CRABBITMQ_SHIM_H
// Debian 12 ships rabbitmq-c 0.11 with its headers at the top of /usr/include.
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#include <amqp_framing.h>
#include <sys/time.h>
#endif
