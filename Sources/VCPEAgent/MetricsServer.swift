import NIOCore
import NIOHTTP1
import NIOPosix

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

    /// Binds at once: an address in use is an error before the agent touches anything.
    init(host: String, port: Int, route: @escaping Route) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            channel = try ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 64)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        // A client that says nothing for 30 s is let go: no connection is held forever.
                        try ch.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(30)))
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

    func close() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let route: Route
        private var head: HTTPRequestHead?

        init(route: @escaping Route) { self.route = route }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else { context.fireUserInboundEventTriggered(event) }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h): head = h
            case .body: break  // no route takes a body; it is not kept
            case .end:
                guard let head else { return }
                self.head = nil
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
