import Foundation
import VCPEDescriptor
import VCPETestSupport

/// A minimal valid chain as text, to build semantic cases from.
func chainText(lan: String = #"{ "subnet": "192.168.1.0/24", "gateway": "192.168.1.1" }"#,
               wan: String = #"{ "address": "203.0.113.10/24", "gateway": "203.0.113.1", "segment": "wan0" }"#,
               services: String = #"{ "fw": { "type": "firewall" }, "rt": { "type": "router" } }"#,
               paths: String = #"{ "internet": ["fw", "rt"] }"#,
               extra: String = "") -> String {
    """
    {
      "apiVersion": "vcpe/v1",
      "customer": "acme",
      "lan": \(lan),
      "wan": \(wan),
      "services": \(services),
      "paths": \(paths)\(extra.isEmpty ? "" : ",\n  " + extra)
    }
    """
}
