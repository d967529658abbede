import CDatapath
import CLibbpf
import Foundation
import SystemPackage
import VCPENet
import VCPESystem

#if canImport(Glibc)
import Glibc
#endif

/// One classifier namespace's flow cache (Sources/BPF/flowcache.bpf.c): a tc ingress
/// program on the LAN and path links that forwards cached flows in the kernel, the socket
/// filter that keeps those flows' frames out of the forwarder's ring, and the flow map they
/// share. The maps are pinned under /sys/fs/bpf/vcpe/CUSTOMER and the program stays attached
/// when the forwarder exits: a restarted forwarder adopts both instead of loading anew.
public final class FlowCache: @unchecked Sendable {
    static let root = "/sys/fs/bpf/vcpe"
    static func directory(_ customer: String) -> String { "\(root)/\(customer)" }
    /// The tc filter's place on each interface: vcpe's, found again after a restart.
    static let handle: UInt32 = 0x7663
    static let priority: UInt32 = 1

    let flows: Int32
    /// The socket filter program for the chain's ring (-1 in a cache adopted by its map).
    let missFilter: Int32
    /// nil in a cache adopted by its map: only the map's descriptor is held.
    private let object: OpaquePointer?
    /// The options of the forwarding thread's batch installs, made once (libbpf wants them
    /// in zeroed memory, see `withOptions`): nothing is allocated per batch.
    private let installOptions: UnsafeMutablePointer<bpf_map_batch_opts>
    private var closed = false

    static let image: [UInt8] = Array(Data(base64Encoded: flowCacheObject) ?? Data())

    /// libbpf's warnings go to the forwarder's log, less the kernel's answer to a query for a
    /// filter that is not there yet (how every first attach starts).
    private static let quietLog: Void = {
        _ = libbpf_set_print { level, format, args in
            guard level != LIBBPF_DEBUG, let format, let args else { return 0 }
            var line = [CChar](repeating: 0, count: 512)
            _ = vsnprintf(&line, line.count, format, args)
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.contains("Cannot find specified filter chain") { return 0 }
            _ = text.withCString { write(2, $0, strlen($0)) }
            return 0
        }
    }()

    /// Loads the program (reusing pinned maps), attaches it to `interfaces` unless the same
    /// program already serves them. Call on a thread inside the chain's namespace.
    init(customer: String, interfaces: [Int32], capacity: Int) throws(KernelError) {
        Self.quietLog
        let directory = Self.directory(customer)
        try Self.ensureFilesystem()
        try Self.makeDirectory(directory)
        var loaded: OpaquePointer?
        do throws(KernelError) {
            loaded = try Self.load(directory: directory, capacity: capacity)
        } catch where error.errno == .invalidArgument {
            // Pinned maps of another shape (an older program, another capacity): start afresh.
            Self.unpin(customer)
            try Self.makeDirectory(directory)
            loaded = try Self.load(directory: directory, capacity: capacity)
        }
        let object = loaded!
        self.object = object
        flows = bpf_map__fd(bpf_object__find_map_by_name(object, "flows"))
        missFilter = bpf_program__fd(bpf_object__find_program_by_name(object, "flow_miss"))
        installOptions = Self.makeInstallOptions()
        // A throw from here on runs deinit, which closes the object.
        let program = bpf_program__fd(bpf_object__find_program_by_name(object, "flow_cache"))
        let mine = try Self.identity(program: program)
        let maps: Set<UInt32> = [try Self.mapID(flows)]
        for ifindex in interfaces {
            let created = Self.withHook(ifindex, ingressOnly: true) { bpf_tc_hook_create($0) }
            if created < 0 && created != -EEXIST { throw KernelError("create clsact on", "ifindex \(ifindex)", Errno(negated: created)) }
            let attached = Self.withHook(ifindex, ingressOnly: true) { hook in
                withOptions(Self.filter) { bpf_tc_query(hook, $0) == 0 ? $0.pointee.prog_id : nil }
            }
            // The same program on the same map, left by an earlier forwarder: kept.
            if let attached, let theirs = try? Self.identity(id: attached), theirs.tag == mine.tag, maps.isSubset(of: theirs.maps) { continue }
            try bpfCall("attach flow cache to", "ifindex \(ifindex)") {
                Self.withHook(ifindex, ingressOnly: true) { hook in
                    withOptions({ o in
                        Self.filter(o)
                        o.pointee.prog_fd = program
                        o.pointee.flags = UInt32(BPF_TC_F_REPLACE.rawValue)
                    }) { bpf_tc_attach(hook, $0) }
                }
            }
        }
    }

    /// The cache of a map another process loaded and attached (it passed the descriptor):
    /// the forwarder installs, reads and sweeps flows with nothing but the map.
    init(adopting flows: Int32) {
        object = nil
        self.flows = flows
        missFilter = -1
        installOptions = Self.makeInstallOptions()
    }

    private static func makeInstallOptions() -> UnsafeMutablePointer<bpf_map_batch_opts> {
        withOptions({ (_: UnsafeMutablePointer<bpf_map_batch_opts>) in }) { options in
            let kept = UnsafeMutablePointer<bpf_map_batch_opts>.allocate(capacity: 1)
            UnsafeMutableRawPointer(kept).copyMemory(from: options, byteCount: MemoryLayout<bpf_map_batch_opts>.stride)
            kept.pointee.elem_flags = UInt64(BPF_ANY)
            return kept
        }
    }

    deinit {
        close()
        installOptions.deallocate()
    }

    /// Lets go of this process's handles; what is pinned and attached stays.
    func close() {
        guard !closed else { return }
        closed = true
        if let object { bpf_object__close(object) } else { Glibc.close(flows) }
    }

    /// Takes any program off `interfaces`, with the clsact qdisc vcpe put there. Inside the
    /// namespace; interfaces already gone are fine.
    package static func detach(interfaces: [Int32]) {
        for ifindex in interfaces {
            _ = withHook(ifindex, ingressOnly: false) { bpf_tc_hook_destroy($0) }
        }
    }

    /// The indexes of the calling thread's namespace's interfaces.
    package static func interfacesHere() -> [Int32] {
        guard let list = if_nameindex() else { return [] }
        defer { if_freenameindex(list) }
        var out: [Int32] = []
        var i = 0
        while list[i].if_index != 0 {
            out.append(Int32(list[i].if_index))
            i += 1
        }
        return out
    }

    /// Removes the customer's pinned maps (the kernel frees them once no program holds them).
    public static func unpin(_ customer: String) {
        // The name becomes a path root removes files under.
        guard KernelNames.isValidName(customer, maxLength: KernelNames.maxCustomerName) else { return }
        let directory = directory(customer)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] { unlink(directory + "/" + name) }
        rmdir(directory)
        rmdir(root)  // only once no customer is left in it
    }

    // MARK: the flow map

    /// Installs or replaces `count` entries in one system call.
    @discardableResult
    func install(keys: UnsafePointer<vc_flow_key>, values: UnsafePointer<vc_flow_value>, count: Int) -> Int32 {
        guard count > 0 else { return 0 }
        var n = UInt32(count)
        return bpf_map_update_batch(flows, keys, values, &n, installOptions)
    }

    /// Every entry, read in batches (the control thread's: it allocates).
    func entries() -> [(key: vc_flow_key, value: vc_flow_value)] {
        let chunk = 1024
        var keys = [vc_flow_key](repeating: vc_flow_key(), count: chunk)
        var values = [vc_flow_value](repeating: vc_flow_value(), count: chunk)
        var out: [(key: vc_flow_key, value: vc_flow_value)] = []
        var token: UInt64 = 0, next: UInt64 = 0
        var first = true
        while true {
            var n = UInt32(chunk)
            let r = withUnsafeMutablePointer(to: &token) { t in
                withUnsafeMutablePointer(to: &next) { nx in
                    withOptions({ (_: UnsafeMutablePointer<bpf_map_batch_opts>) in }) {
                        bpf_map_lookup_batch(flows, first ? nil : UnsafeMutableRawPointer(t), UnsafeMutableRawPointer(nx), &keys, &values, &n, $0)
                    }
                }
            }
            for i in 0..<Int(n) { out.append((keys[i], values[i])) }
            if r < 0 { break }  // ENOENT: the end (or an error: what was read is what there is)
            token = next
            first = false
        }
        return out
    }

    func update(_ key: vc_flow_key, _ value: vc_flow_value) {
        var k = key, v = value
        _ = bpf_map_update_elem(flows, &k, &v, UInt64(BPF_ANY))
    }

    func lookup(_ key: vc_flow_key) -> vc_flow_value? {
        var k = key, v = vc_flow_value()
        return bpf_map_lookup_elem(flows, &k, &v) == 0 ? v : nil
    }

    func delete(_ key: vc_flow_key) {
        var k = key
        _ = bpf_map_delete_elem(flows, &k)
    }

    // MARK: helpers

    private static func load(directory: String, capacity: Int) throws(KernelError) -> OpaquePointer {
        let opened = image.withUnsafeBytes { bpf_object__open_mem($0.baseAddress, $0.count, nil) }
        guard let object = opened else { throw KernelError("open flow cache object", "(embedded)", Errno.lastCall) }
        do throws(KernelError) {
            let flows = bpf_object__find_map_by_name(object, "flows")
            try bpfCall("size flow map", "\(capacity) entries") { bpf_map__set_max_entries(flows, UInt32(clamping: capacity)) }
            try bpfCall("pin path of", "flows") { bpf_map__set_pin_path(flows, directory + "/flows") }
            try bpfCall("load flow cache", directory) { bpf_object__load(object) }
        } catch {
            bpf_object__close(object)
            throw error
        }
        return object
    }

    static let filesystem = "/sys/fs/bpf"

    /// bpffs is where maps outlive the process; mounted if nobody has.
    package static func ensureFilesystem() throws(KernelError) {
        var fs = statfs()
        let bpfMagic: Int = 0xcafe_4a11
        if statfs(filesystem, &fs) == 0 && Int(fs.f_type) == bpfMagic { return }
        try syscall("mount bpffs on", filesystem) { mount("bpf", filesystem, "bpf", 0, nil) }
    }

    private static func makeDirectory(_ path: String) throws(KernelError) {
        for dir in [root, path] where mkdir(dir, 0o700) != 0 {
            let e = Errno.lastCall
            if e != .fileExists { throw KernelError("create", dir, e) }
        }
    }

    /// The interface's clsact ingress hook (or the whole qdisc, to destroy it).
    private static func withHook<R>(_ ifindex: Int32, ingressOnly: Bool, _ body: (UnsafeMutablePointer<bpf_tc_hook>) -> R) -> R {
        withOptions({ h in
            h.pointee.ifindex = ifindex
            h.pointee.attach_point = ingressOnly ? BPF_TC_INGRESS : bpf_tc_attach_point(rawValue: BPF_TC_INGRESS.rawValue | BPF_TC_EGRESS.rawValue)
        }, body)
    }

    /// vcpe's filter slot on a hook.
    private static func filter(_ o: UnsafeMutablePointer<bpf_tc_opts>) {
        o.pointee.handle = handle
        o.pointee.priority = priority
    }

    private struct Identity { var tag: UInt64; var maps: Set<UInt32> }

    /// A program's tag (a hash of its instructions) and the maps it uses.
    private static func identity(program fd: Int32) throws(KernelError) -> Identity {
        var ids = [UInt32](repeating: 0, count: 8)
        var info = bpf_prog_info()
        var length = UInt32(MemoryLayout<bpf_prog_info>.size)
        let r = ids.withUnsafeMutableBufferPointer { buffer in
            info.nr_map_ids = UInt32(buffer.count)
            info.map_ids = UInt64(UInt(bitPattern: buffer.baseAddress))
            return bpf_obj_get_info_by_fd(fd, &info, &length)
        }
        if r < 0 { throw KernelError("read program info", "fd \(fd)", Errno(negated: r)) }
        let tag = withUnsafeBytes(of: info.tag) { $0.load(as: UInt64.self) }
        return Identity(tag: tag, maps: Set(ids.prefix(Int(min(info.nr_map_ids, 8)))))
    }

    private static func identity(id: UInt32) throws(KernelError) -> Identity {
        let fd = bpf_prog_get_fd_by_id(id)
        if fd < 0 { throw KernelError("open program", "id \(id)", Errno(negated: fd)) }
        defer { Glibc.close(fd) }
        return try identity(program: fd)
    }

    private static func mapID(_ fd: Int32) throws(KernelError) -> UInt32 {
        var info = bpf_map_info()
        var length = UInt32(MemoryLayout<bpf_map_info>.size)
        let r = bpf_obj_get_info_by_fd(fd, &info, &length)
        if r < 0 { throw KernelError("read map info", "fd \(fd)", Errno(negated: r)) }
        return info.id
    }
}

/// Runs `body` with a libbpf options struct whose size comes first and every other byte is
/// zero but what `configure` sets: libbpf refuses non-zero bytes past the fields it knows,
/// and a Swift value's padding is not guaranteed zero, so it lives in zeroed memory.
extension FlowCache {
    /// libbpf's options structs, zeroed with their size set (what LIBBPF_OPTS does).
    static func withZeroedOptions<T, R>(_ configure: (UnsafeMutablePointer<T>) -> Void, _ body: (UnsafeMutablePointer<T>) -> R) -> R {
        withOptions(configure, body)
    }
}

private func withOptions<T, R>(_ configure: (UnsafeMutablePointer<T>) -> Void, _ body: (UnsafeMutablePointer<T>) -> R) -> R {
    let raw = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.stride, alignment: MemoryLayout<T>.alignment)
    defer { raw.deallocate() }
    raw.initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<T>.stride)
    raw.storeBytes(of: MemoryLayout<T>.stride, as: Int.self)
    let p = raw.assumingMemoryBound(to: T.self)
    configure(p)
    return body(p)
}

/// libbpf returns -errno.
private func bpfCall(_ operation: String, _ object: String, _ body: () -> Int32) throws(KernelError) {
    let r = body()
    if r < 0 { throw KernelError(operation, object, Errno(negated: r)) }
}

/// Flow entries the forwarding thread gathers over a batch and installs with one system
/// call: preallocated, nothing allocated per packet.
final class StagedFlows {
    let keys: UnsafeMutablePointer<vc_flow_key>
    let values: UnsafeMutablePointer<vc_flow_value>
    let capacity: Int
    var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        keys = .allocate(capacity: capacity)
        keys.initialize(repeating: vc_flow_key(), count: capacity)
        values = .allocate(capacity: capacity)
        values.initialize(repeating: vc_flow_value(), count: capacity)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    /// `key` is to be rewritten to `dst` from `src` and sent on `out` (0: dropped).
    @inline(__always)
    func stage(_ key: vc_flow_key, to dst: MAC, from src: MAC, out: Int32, rule: UInt16, path: Int, generation: UInt32, now: UInt64) {
        guard count < capacity else { return }
        let v = values + count
        withUnsafeMutableBytes(of: &v.pointee.macs) { m in
            dst.store(at: m.baseAddress!)
            src.store(at: m.baseAddress! + 6)
        }
        v.pointee.ifindex = UInt32(bitPattern: out)
        v.pointee.rule = rule
        v.pointee.path = UInt16(truncatingIfNeeded: path)
        v.pointee.generation = generation
        v.pointee.packets = 0
        v.pointee.bytes = 0
        v.pointee.last_seen = now
        keys[count] = key
        count += 1
    }

    @inline(__always)
    func install(in cache: FlowCache?) {
        guard count > 0 else { return }
        cache?.install(keys: keys, values: values, count: count)
        count = 0
    }
}
