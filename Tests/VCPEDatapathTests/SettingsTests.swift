import Foundation
import Testing
import VCPEDatapath

@Suite struct SettingsTests {
    @Test func aSettingsFileMayNameOnlyWhatItChanges() throws {
        let s = try JSONDecoder().decode(ForwarderSettings.self, from: Data(#"{"ringFrames": 32}"#.utf8))
        #expect(s.ringFrames == 32 && !s.busyPoll && s.cpu == nil && s.spinMicroseconds == ForwarderSettings().spinMicroseconds)
        let busy = try JSONDecoder().decode(ForwarderSettings.self, from: Data(#"{"busyPoll": true, "cpu": 1}"#.utf8))
        #expect(busy.busyPoll && busy.cpu == 1 && busy.ringFrames == ForwarderSettings().ringFrames)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ForwarderSettings.self, from: Data(#"{"ringFrames": "many"}"#.utf8)) }
    }
}
