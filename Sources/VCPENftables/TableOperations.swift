/// What the controller asks of nftables in one namespace: `NftSocket` is the kernel's;
/// tests bring a model of their own.
public protocol TableOperations: AnyObject {
    func replaceTable(_ t: NftTable, expectedGeneration: UInt32?) throws
    func removeTable(family: NftFamily, name: String) throws
}

/// What the observer reads of nftables in one namespace.
public protocol TableReading: AnyObject {
    func tables() throws -> [TableInfo]
    func ruleCount(family: NftFamily, table: String) throws -> Int
}

extension NftSocket: TableOperations, TableReading {
    public func ruleCount(family: NftFamily, table: String) throws -> Int { try rules(family: family, table: table).count }
}
