import Foundation
import SpotqCore
import Testing

@Suite("Pod identity: each pod's broker grant, and what its events are trusted with")
struct PodIdentityTests {
    // MARK: The grant

    @Test func aPodsGrant_readsOnlyItsBatchQueue_configuresNothing_andWritesOnlyThePodsTopicExchanges() {
        let grant = PodBrokerGrant(podRowID: 12, batchID: 7, vhost: "/")
        #expect(grant.user == "spotq-pod-12-" + PodBrokerGrant.vhostTag("/"))
        #expect(grant.permissions.configure == "^$")
        let read = try! Regex(grant.permissions.read)
        #expect("spotq.batch.7".wholeMatch(of: read) != nil)
        for other in ["spotq.batch.70", "spotq.batch.17", "spotq.batch.7x", "spotqxbatchx7", "spotq.enqueue", "spotq.dead", "spotq.demand", "spotq.events.recorder"] {
            #expect(other.firstMatch(of: read) == nil, "\(other) must not be readable")
        }
        let write = try! Regex(grant.permissions.write)
        for allowed in ["spotq.events", "spotq.pod.retry", "spotq.pod.dead"] { #expect(allowed.firstMatch(of: write) != nil) }
        for refused in ["spotq.work", "spotq.dlx", "spotq.enqueue", "amq.default", "spotq.batch.7", "spotqxevents"] {
            #expect(refused.firstMatch(of: write) == nil, "\(refused) must not be writable")
        }
    }

    @Test func aPodsTopicPermissions_holdEveryWritableExchangeToItsOwnBatchsKeys() throws {
        let grant = PodBrokerGrant(podRowID: 12, batchID: 7, vhost: "/")
        // RabbitMQ leaves an exchange without a topic permission unrestricted: every writable one needs one.
        #expect(Set(grant.topicPermissions.map(\.exchange)) == [BrokerNames.eventsExchange, BrokerNames.podRetryExchange, BrokerNames.podDeadLetterExchange])
        let events = try Regex(try #require(grant.topicPermissions.first { $0.exchange == BrokerNames.eventsExchange }).write)
        let pod = SpotqEvent.Pod(provider: "runpod", id: "abc")
        for event in [
            SpotqEvent(eventKey: "k", kind: .imageDone, batchID: 7, itemID: 1, pod: pod),
            SpotqEvent(eventKey: "k", kind: .heartbeat, batchID: 7, pod: pod),
            SpotqEvent(eventKey: "k", kind: .state, batchID: 7, pod: pod, state: .gpuFailed),
            SpotqEvent(eventKey: "k", kind: .assetReady, batchID: 7, pod: pod),
        ] {
            #expect(event.routingKey.firstMatch(of: events) != nil, "the worker's own \(event.routingKey) must be allowed")
        }
        for refused in ["metrics.demand", "image.failed.8", "image.failed.70", "pod.gpu_failed.17", "image.done.7.x", "image.done", "other.thing.7"] {
            #expect(refused.firstMatch(of: events) == nil, "\(refused) must be refused")
        }
        for exchange in [BrokerNames.podRetryExchange, BrokerNames.podDeadLetterExchange] {
            let keys = try Regex(try #require(grant.topicPermissions.first { $0.exchange == exchange }).write)
            #expect("spotq.batch.7".firstMatch(of: keys) != nil)
            #expect("spotq.batch.8".firstMatch(of: keys) == nil)
            #expect("spotq.enqueue".firstMatch(of: keys) == nil)
        }
        #expect(grant.topicPermissions.allSatisfy { $0.read == "^$" })
    }

    /// Users are global to a broker: a deployment on another vhost has its own names, and
    /// reconciling touches only its own.
    @Test func podUserNames_sayWhichVhostsSpotqMadeThem() {
        let mine = PodBrokerGrant.userName(podRowID: 42, vhost: "spotq")
        #expect(mine != PodBrokerGrant.userName(podRowID: 42, vhost: "/"))
        #expect(PodBrokerGrant.isPodUser(mine, vhost: "spotq"))
        #expect(!PodBrokerGrant.isPodUser(mine, vhost: "/"))
        let tag = PodBrokerGrant.vhostTag("spotq")
        for name in ["guest", "spotq-pod--\(tag)", "spotq-pod-4x-\(tag)", "xspotq-pod-4-\(tag)", "spotq-server", "spotq-pod-4"] {
            #expect(!PodBrokerGrant.isPodUser(name, vhost: "spotq"), "\(name)")
        }
    }

    @Test func passwordHash_isRabbitMQsSaltedSHA256() {
        // The hash RabbitMQ 3.10.8 itself made for this password and salt (reference: rabbitmq-least-privilege.md).
        #expect(BrokerPassword.rabbitMQHash("w1-secret", salt: [0x90, 0x8d, 0x5c, 0x2a]) == "kI1cKs4R6qwezX7GxQiNtQlOe6oT4Bmlqd7N0/72rPeoqmlC")
        let password = BrokerPassword.generate()
        #expect(password.count == 48 && password.allSatisfy(\.isHexDigit))
        #expect(BrokerPassword.generate() != password)
    }

    // MARK: Trusting events

    let pod = EventTrust.PodRecord(rowID: 12, provider: "runpod", providerPodID: "abc", batchID: 7, terminated: false)
    let trusted: Set = ["spotq-server"]

    func event(kind: EventKind = .imageDone, batch: Int64? = 7, podID: String = "abc", provider: String = "runpod") -> SpotqEvent {
        SpotqEvent(eventKey: "k", kind: kind, batchID: batch, itemID: 3, pod: SpotqEvent.Pod(provider: provider, id: podID))
    }

    @Test func anEventFromItsOwnPod_isRecordedAgainstThatPodsRow() {
        #expect(EventTrust.judge(event(), publisher: "spotq-pod-12", trustedUsers: trusted, pod: pod) == .fromPod(rowID: 12))
        var unrented = pod
        unrented.providerPodID = nil
        #expect(EventTrust.judge(event(podID: "anything"), publisher: "spotq-pod-12", trustedUsers: trusted, pod: unrented) == .fromPod(rowID: 12))
    }

    @Test func forgedEvents_areRefusedWithTheReason() {
        func reason(_ verdict: EventTrust.Verdict) -> String? { if case .refused(let why) = verdict { why } else { nil } }
        let cases: [(String, EventTrust.Verdict, String)] = [
            ("no user_id", EventTrust.judge(event(), publisher: nil, trustedUsers: trusted, pod: pod), "no validated user_id"),
            ("a stranger", EventTrust.judge(event(), publisher: "mallory", trustedUsers: trusted, pod: nil), "neither a pod's"),
            ("an unknown pod", EventTrust.judge(event(), publisher: "spotq-pod-99-0badf00d", trustedUsers: trusted, pod: nil), "belongs to no pod"),
            ("another pod's id", EventTrust.judge(event(podID: "victim"), publisher: "spotq-pod-12", trustedUsers: trusted, pod: pod), "names pod runpod/victim"),
            ("another provider", EventTrust.judge(event(provider: "vast"), publisher: "spotq-pod-12", trustedUsers: trusted, pod: pod), "names pod vast/abc"),
            ("another batch", EventTrust.judge(event(batch: 8), publisher: "spotq-pod-12", trustedUsers: trusted, pod: pod), "names batch 8"),
            ("no batch", EventTrust.judge(event(batch: nil), publisher: "spotq-pod-12", trustedUsers: trusted, pod: pod), "names batch none"),
        ]
        for (what, verdict, expected) in cases {
            let why = reason(verdict)
            #expect(why?.hasPrefix("forged: ") == true && why?.contains(expected) == true, "\(what): \(verdict)")
        }
        var ended = pod
        ended.terminated = true
        #expect(reason(EventTrust.judge(event(), publisher: "spotq-pod-12", trustedUsers: trusted, pod: ended))?.contains("terminated") == true)
    }

    @Test func spotqsOwnUsers_areTrusted_butAReplayIsJudgedAsItsFirstSender() {
        #expect(EventTrust.judge(event(podID: "any"), publisher: "spotq-server", trustedUsers: trusted, pod: nil) == .trusted)
        // The server replays a dead-lettered forgery: the header it set from the validated user_id counts.
        #expect(EventTrust.sender(userID: "spotq-server", publishedBy: "spotq-pod-12", trustedUsers: trusted) == "spotq-pod-12")
        // A pod cannot vouch for itself with the header.
        #expect(EventTrust.sender(userID: "spotq-pod-12", publishedBy: "spotq-server", trustedUsers: trusted) == "spotq-pod-12")
        #expect(EventTrust.sender(userID: "spotq-server", publishedBy: nil, trustedUsers: trusted) == "spotq-server")
    }

    // MARK: Work the planner signed

    @Test func signedWork_verifiesForItsBatchOnly_andAnythingElseIsForged() throws {
        let signer = WorkSignature.Signer(secret: String(repeating: "s", count: 40))
        let verifier = try #require(WorkSignature.Verifier(publicKeys: signer.publicKey))
        let body = Array(#"{"item_id": 3}"#.utf8)
        let signature = signer.signature(queue: "spotq.batch.7", body: body)
        #expect(verifier.refusal(queue: "spotq.batch.7", body: body, signature: signature) == nil)
        #expect(verifier.refusal(queue: "spotq.batch.8", body: body, signature: signature)?.hasPrefix("forged work:") == true)
        #expect(verifier.refusal(queue: "spotq.batch.7", body: Array(#"{"item_id": 4}"#.utf8), signature: signature)?.hasPrefix("forged work:") == true)
        #expect(verifier.refusal(queue: "spotq.batch.7", body: body, signature: nil)?.contains("no planner's signature") == true)
        #expect(verifier.refusal(queue: "spotq.batch.7", body: body, signature: "not base64!")?.hasPrefix("forged work:") == true)
        let other = WorkSignature.Signer(secret: String(repeating: "t", count: 40))
        #expect(verifier.refusal(queue: "spotq.batch.7", body: body, signature: other.signature(queue: "spotq.batch.7", body: body)) != nil)
        // The same secret always gives the same key: the provisioner and the server agree.
        #expect(WorkSignature.Signer(secret: String(repeating: "s", count: 40)).publicKey == signer.publicKey)
        #expect(WorkSignature.Verifier(publicKeys: "short") == nil)
        #expect(WorkSignature.Verifier(publicKeys: "") == nil)
    }

    @Test func afterASecretRotation_aBatchSignedWithBothKeys_verifiesWithEither_andNoOtherKey() throws {
        let before = WorkSignature.Signer(secret: String(repeating: "a", count: 40))
        let after = WorkSignature.Signer(secret: String(repeating: "b", count: 40))
        let stranger = WorkSignature.Signer(secret: String(repeating: "c", count: 40))
        let verifier = try #require(WorkSignature.Verifier(publicKeys: "\(before.publicKey),\(after.publicKey)"))
        let body = Array(#"{"item_id": 3}"#.utf8)
        #expect(verifier.refusal(queue: "spotq.batch.7", body: body, signature: before.signature(queue: "spotq.batch.7", body: body)) == nil)
        #expect(verifier.refusal(queue: "spotq.batch.7", body: body, signature: after.signature(queue: "spotq.batch.7", body: body)) == nil)
        #expect(verifier.refusal(queue: "spotq.batch.7", body: body, signature: stranger.signature(queue: "spotq.batch.7", body: body)) != nil)
        #expect(WorkSignature.Verifier(publicKeys: "\(before.publicKey),short") == nil, "one bad key makes the setting invalid")
    }

    @Test func aDeadLetterOfForgedWork_failsNoItem() {
        let letter = DeadLetter(
            reason: "forged work: it carries no planner's signature (x-spotq-signature)", originExchange: BrokerNames.workExchange,
            originRoutingKey: "spotq.batch.7", originQueue: "spotq.batch.7", deathCount: 1, deadLetteredAt: Date(), messageID: nil, contentType: nil,
            headersJSON: "{}", body: Array(#"{"item_id": 3}"#.utf8))
        #expect(letter.workItem == nil)
        var genuine = letter
        genuine.reason = "failed 3 times: ComfyUI refused the workflow"
        #expect(genuine.workItem == WorkItemReference(routingKey: "spotq.batch.7", body: letter.body))
    }

    // MARK: Dead letters a pod sent

    @Test func aPodsDeadLetter_hasItsOwnBatchAsOrigin_whateverItsHeadersClaim() {
        let forged = DeadLetter(
            reason: "x", originExchange: BrokerNames.enqueueExchange, originRoutingKey: "image.request", originQueue: BrokerNames.enqueueQueue,
            deathCount: 1, deadLetteredAt: Date(), messageID: nil, contentType: nil, headersJSON: "{}", body: [], deadLetteredBy: "spotq-pod-12")
        let trusted = forged.sentByPod(batchID: 7)
        #expect(trusted.originExchange == BrokerNames.workExchange)
        #expect(trusted.originRoutingKey == "spotq.batch.7")
        #expect(trusted.originQueue == "spotq.batch.7")
        #expect(trusted.reason.contains("origin claimed by the pod: spotq.enqueue/image.request"))
        let honest = DeadLetter(
            reason: "failed 3 times", originExchange: BrokerNames.workExchange, originRoutingKey: "spotq.batch.7", originQueue: "spotq.batch.7",
            deathCount: 1, deadLetteredAt: Date(), messageID: nil, contentType: nil, headersJSON: "{}", body: [], deadLetteredBy: "spotq-pod-12")
        #expect(honest.sentByPod(batchID: 7).reason == "failed 3 times")
        var retried = honest
        retried.originExchange = BrokerNames.podRetryExchange
        #expect(retried.sentByPod(batchID: 7).reason == "failed 3 times", "a retry copy's origin is genuine too")
        #expect(retried.sentByPod(batchID: 7).originExchange == BrokerNames.workExchange)
        let stranger = forged.sentByPod(batchID: nil)
        #expect(stranger.originExchange == nil && stranger.originRoutingKey == nil)
        #expect(stranger.reason.contains("cannot be replayed"))
    }
}

@Suite("Pod defaults that leak nothing")
struct PodDefaultsTests {
    @Test func aPodsServerURL_isHTTPS_orPlainHTTPOnlyToLoopbackAndPrivateAddresses() {
        for allowed in ["https://spotq.example.com", "http://127.0.0.1:8080", "http://localhost:9", "http://10.1.2.3", "http://172.20.0.5:80",
                        "http://192.168.1.9", "http://[::1]:8080", "http://[fd00::5]/", "HTTPS://Spotq.Example.com"] {
            #expect(PlainHTTPPolicy.refusal(allowed, variable: "SPOTQ_POD_SERVER_URL") == nil, "\(allowed)")
        }
        for refused in ["http://spotq.example.com", "http://203.0.113.7:8080", "http://172.32.0.1", "http://11.0.0.1", "http://spotq.internal",
                        "ftp://127.0.0.1", "not a url", "http://"] {
            let why = PlainHTTPPolicy.refusal(refused, variable: "SPOTQ_POD_SERVER_URL")
            #expect(why?.contains("SPOTQ_POD_SERVER_URL") == true, "\(refused): \(why ?? "allowed")")
        }
        #expect(PlainHTTPPolicy.refusal("http://spotq.example.com", variable: "X")?.contains("in clear") == true)
    }

    @Test func aPodPublishesNoPortByDefault() {
        #expect(FleetSettings.PodTemplate().ports.isEmpty)
    }
}
