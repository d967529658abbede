/// Seeded randomness for every test target, from where it lives.
@_exported import struct VCPEClassifier.SplitMix64
