import CDatapath
import CLibbpf
import SystemPackage
import VCPESystem

/// The flow cache's tc program run by the kernel on given frames (BPF_PROG_TEST_RUN), with
/// given map entries, loaded apart from any chain (nothing pinned, nothing attached): how
/// tests hold the eBPF program to what the forwarder does. The kernel makes each frame a
/// packet of the loopback device (ifindex 1, address 00:00:00:00:00:00), so a frame is for
/// "this interface" when its destination address is all zeros.
public struct FlowCacheTestRun: ~Copyable {
    private let object: OpaquePointer
    private let program: Int32
    private let flows: Int32

    public init() throws(KernelError) {
        let opened = FlowCache.image.withUnsafeBytes { bpf_object__open_mem($0.baseAddress, $0.count, nil) }
        guard let object = opened else { throw KernelError("open flow cache object", "(embedded)", Errno.lastCall) }
        let r = bpf_object__load(object)
        guard r == 0 else {
            bpf_object__close(object)
            throw KernelError("load flow cache", "(test run)", Errno(negated: r))
        }
        self.object = object
        program = bpf_program__fd(bpf_object__find_program_by_name(object, "flow_cache"))
        flows = bpf_map__fd(bpf_object__find_map_by_name(object, "flows"))
    }

    deinit { bpf_object__close(object) }

    public func insert(_ key: vc_flow_key, _ value: vc_flow_value) {
        var k = key, v = value
        _ = bpf_map_update_elem(flows, &k, &v, UInt64(BPF_ANY))
    }

    /// The program's verdict on one frame (TC_ACT_OK 0, TC_ACT_SHOT 2, TC_ACT_REDIRECT 7).
    public func run(_ frame: [UInt8]) throws(KernelError) -> Int32 {
        var out = [UInt8](repeating: 0, count: max(frame.count, 64) + 64)
        var verdict: UInt32 = 0
        let r = frame.withUnsafeBytes { input in
            out.withUnsafeMutableBytes { output in
                FlowCache.withZeroedOptions({ (o: UnsafeMutablePointer<bpf_test_run_opts>) in
                    o.pointee.data_in = input.baseAddress
                    o.pointee.data_size_in = UInt32(input.count)
                    o.pointee.data_out = output.baseAddress
                    o.pointee.data_size_out = UInt32(output.count)
                    o.pointee.repeat = 1
                }) { o -> Int32 in
                    let r = bpf_prog_test_run_opts(program, o)
                    verdict = o.pointee.retval
                    return r
                }
            }
        }
        guard r == 0 else { throw KernelError("BPF_PROG_TEST_RUN", "flow_cache", Errno(negated: r)) }
        return Int32(bitPattern: verdict)
    }
}
