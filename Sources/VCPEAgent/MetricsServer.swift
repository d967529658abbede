import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The agent's HTTP endpoint: GET (or HEAD) of a few fixed paths, one response per
/// connection. Answers are made off the event loop (a scrape reads the kernel), then
/// written back on it.
final class MetricsServer: Sendable {
    struct Response: Sendable {
        var status: HTTPResponseStatus
        var contentType = "text/plain; charset=utf-8"
        var body: [UInt8]
    }

    /// Answers a path; calls back once, from any thread.
    typealias Route = @Sendable (_ path: String, _ answer: @escaping @Sendable (Response) -> Void) -> Void

    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    /// At most this many connections at once; more are closed as they come.
    static let maxConnections = 32
    /// A connection gets this long, from accept to its answer, whatever it sends.
    static let requestDeadline = TimeAmount.seconds(30)
    /// Nothing here takes a body: one larger than this is refused.
    static let maxBody = 4096

    /// Binds at once: an address in use is an error before the agent touches anything.
    init(host: String, port: Int, route: @escaping Route) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let gate = Gate()
        do {
            channel = try ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 64)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { ch in
                    guard gate.open.add(1, ordering: .relaxed).newValue <= Self.maxConnections else {
                        gate.open.subtract(1, ordering: .relaxed)
                        return ch.close()
                    }
                    ch.closeFuture.whenComplete { _ in gate.open.subtract(1, ordering: .relaxed) }
                    return ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try ch.pipeline.syncOperations.addHandler(Handler(route: route))
                    }
                }
                .bind(host: host, port: port).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        self.group = group
    }

    /// Where it listens (the port the kernel chose when asked for 0).
    var port: Int { channel.localAddress?.port ?? 0 }

    /// Takes no new connection; those open are answered.
    func stopListening() { try? channel.close().wait() }

    func close() {
        stopListening()
        try? group.syncShutdownGracefully()
    }

    /// Connections open now.
    private final class Gate: Sendable {
        let open = Atomic<Int>(0)
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let route: Route
        private var head: HTTPRequestHead?
        private var bodyBytes = 0
        private var answered = false

        init(route: @escaping Route) { self.route = route }

        private var deadline: Scheduled<Void>?

        /// The connection's deadline: a client that trickles bytes is let go all the same.
        func handlerAdded(context: ChannelHandlerContext) {
            let channel = context.channel
            deadline = context.eventLoop.scheduleTask(in: MetricsServer.requestDeadline) { channel.close(promise: nil) }
        }

        /// Gone before its deadline: the timer goes too, and with it its hold on the channel.
        func handlerRemoved(context: ChannelHandlerContext) { deadline?.cancel() }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !answered else { return }
            switch unwrapInboundIn(data) {
            case .head(let h): head = h
            case .body(let b):
                // No route takes a body; it is not kept, and a large one is refused.
                bodyBytes += b.readableBytes
                if bodyBytes > MetricsServer.maxBody {
                    answered = true
                    Self.write(context, Response(status: .payloadTooLarge, body: Array("no body here\n".utf8)), bodyToo: true)
                }
            case .end:
                guard let head else { return }
                self.head = nil
                answered = true
                let loop = context.eventLoop
                let bound = NIOLoopBound(context, eventLoop: loop)
                let isHead = head.method == .HEAD
                guard head.method == .GET || isHead else {
                    Self.write(bound.value, Response(status: .methodNotAllowed, body: Array("only GET\n".utf8)), bodyToo: true)
                    return
                }
                let path = String(head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
                route(path) { response in
                    loop.execute { Self.write(bound.value, response, bodyToo: !isHead) }
                }
            }
        }

        private static func write(_ context: ChannelHandlerContext, _ r: Response, bodyToo: Bool) {
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: r.contentType)
            headers.add(name: "Content-Length", value: "\(r.body.count)")
            headers.add(name: "Connection", value: "close")
            context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: r.status, headers: headers))), promise: nil)
            if bodyToo {
                var buffer = context.channel.allocator.buffer(capacity: r.body.count)
                buffer.writeBytes(r.body)
                context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(buffer))), promise: nil)
            }
            let channel = context.channel
            context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
