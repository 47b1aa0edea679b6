import AMQPClient
import ArgumentParser
import CurlClient
import Foundation
import Logging
import PostgresClient
import ServiceLifecycle
import SpotqBroker
import SpotqCore
import SpotqProvisioner
import SpotqStore

/// `spotq provisioner`: keeps the fleet sized to the demand.
struct ProvisionerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provisioner",
        abstract: "Rent, resume, drain and terminate pods to match demand, and account for their cost (until SIGTERM).",
        discussion: """
            Needs SPOTQ_DATABASE_URL, SPOTQ_AMQP_URL, SPOTQ_RUNPOD_API_KEY and SPOTQ_POD_SERVER_URL (the
            server as pods reach it); not SPOTQ_SECRET (pods get their own tokens and their batch's keys). Reads demand snapshots from spotq.demand
            (published by `spotq server`'s demand component). Point SPOTQ_RUNPOD_API_URL at `spotq devcloud`
            to run against the local cloud. Every setting is in the README, "Provisioner".
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "One round (reconcile, costs, actions) and exit.") var once = false

    func run() async throws {
        let logger = try connection.makeLogger(label: "spotq.provisioner")
        let settings = connection.settings
        let planning = try PlanningSettings.resolve(settings)
        let amqpURL = try connection.resolvedAMQPURL()
        let configuration = try ProvisionerConfiguration.from(
            settings, amqpURL: amqpURL, targetHoursPerPod: planning.policy.targetHoursPerPod, setupSeconds: planning.gpu.fixedSetupSeconds)
        let postgresConfiguration = try PostgresConfiguration(url: try connection.resolvedDatabaseURL())
        let postgres = PostgresClient(configuration: postgresConfiguration, logger: logger)
        let amqp = AMQPClient(configuration: AMQPConfiguration.spotq(url: amqpURL, connectionName: "spotq provisioner"), logger: logger)
        let http = try HTTPClient(logger: logger, name: "spotq-provider-api")
        defer { http.shutdown() }
        let provider = RunPodProvider(endpoint: configuration.runPodEndpoint, apiKey: configuration.runPodAPIKey, http: http, logger: logger)
        let demand = LatestDemand(publishers: configuration.demandPublishers, logger: logger)
        let brokerAccess = try configuration.brokerManagementURL.map {
            try PodBrokerAccess(management: RabbitMQManagement(url: $0, http: http), podAMQPURL: configuration.podAMQPURL)
        }
        if brokerAccess == nil {
            logger.warning("provisioner: SPOTQ_RABBITMQ_MANAGEMENT_URL is not set: every pod gets the same broker login (SPOTQ_POD_AMQP_URL), so one pod's host can act for all of them; set it to give each pod its own user")
        }
        let provisioner = Provisioner(
            configuration: configuration, provider: provider, pods: PodStore(client: postgres), demand: demand, amqp: amqp,
            brokerAccess: brokerAccess, logger: logger)
        let lock = ProvisionerLockHolder(configuration: postgresConfiguration, logger: logger)
        do {
            try await ServerStartup.checkSchema(postgres)
            while !(try await lock.take()) {
                if once { throw ValidationError("another spotq provisioner is running (it holds the provisioner lock in PostgreSQL); one at a time") }
                logger.warning("provisioner: another provisioner holds the lock; waiting (one at a time, or they would rent the same pods twice)")
                try await Task.sleep(for: .seconds(15))
            }
            do {
                try await ServerStartup.declareTopology(amqpURL: amqpURL, logger: logger)
            } catch let error as AMQPError where error.replyCode == 403 {
                // A least-privilege provisioner user reads spotq.demand and declares nothing.
                logger.info("provisioner: its broker user may not declare spotq's topology; `spotq server` declares it", metadata: ["reply": "\(error.replyText ?? "")"])
            }
            await provisioner.setLockCheck { await lock.isHeld() }
            if (try? AMQPEndpoint(parsing: configuration.podAMQPURL))?.crossesNetworkInClear == true {
                logger.warning("provisioner: SPOTQ_POD_AMQP_URL is plain amqp:// to another host: every pod's broker password and messages cross the network in clear; give pods an amqps:// URL")
            }
            logger.info("provisioner: starting", metadata: [
                "api": "\(configuration.runPodEndpoint)", "max_pods": "\(configuration.fleet.limits.maxPods)",
                "budget_usd_per_hour": "\(configuration.fleet.limits.budgetUSDPerHour)", "fallback": "\(configuration.fleet.fallback.rawValue)",
            ])
            if once {
                await provisioner.round(now: Date())
            } else {
                let group = ServiceGroup(configuration: ServiceGroupConfiguration(
                    services: [ServiceGroupConfiguration.ServiceConfiguration(service: provisioner)],
                    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
                try await group.run()
            }
            logger.info("provisioner: stopped")
        } catch {
            await lock.release()
            await amqp.close()
            await postgres.shutdown()
            throw error
        }
        await lock.release()
        await amqp.close()
        await postgres.shutdown()
    }
}
