#ifndef SPOTQ_CLIBPQ_SHIM_H
#define SPOTQ_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#include <sys/select.h>
#endif
