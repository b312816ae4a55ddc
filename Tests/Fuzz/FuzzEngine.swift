// contactwatch-fuzz: a libFuzzer target over the engine's whole input path — frame count, size, UTF-8, the JSON
// reader, the event decoder and validation, sequence tracking and every rule — as `make fuzz` builds it
// (`--sanitize=fuzzer -DFUZZING`, libFuzzer supplies `main`). Built normally (`swift build`), the same file is a
// reproducer: `contactwatch-fuzz FILE...` runs each file as one fuzz input and exits 0 when every invariant holds.
//
// One input is a short stream: lines split at `\n`, fed in order to one fresh engine, so state-dependent paths
// (replacements, withdrawals, overdue sweeps, gaps) are reached, not only the parser. A line is one message:
//   - `\u{1}` first: a three-frame message (the rest is the body);
//   - `TOPIC\tBODY` when a tab comes before the first `{`: two frames with that topic (mismatches included);
//   - otherwise as the spec's examples README feeds lines: two frames when the line is a JSON object with a string
//     `eventType` (that is the topic), else one frame. The examples themselves are therefore the seed corpus.
// Each input goes through two engines: one at the default settings, and one at settings small inputs can reach the
// rest of the rules with — R7 on (off by default, so never fuzzed before session 49), windows, deadlines and retention
// of a day or a few (forgetting, expiry), a tiny compliance-rate sample, video as face to face, and a zone whose
// clocks change at midnight.
// Invariants checked on every output message (a violation traps, which libFuzzer reports as a crash):
//   every body is a JSON object; every alert has a strictly increasing `alertSequence`; topics are non-empty.
// And on every line before the engine sees it: the engine's one-pass reader (`EventScanner` + `EventDecoder`) decides
// and decodes exactly as the reference path (`isValidUTF8` + `JSONReader` + `ReferenceEventDecoder`) does
// (`ScannerDifferential`): same UTF-8/JSON decision and message, same decoded event or invalidity.
import ContactWatchEngine
import Foundation

private let now: Millis = 1_795_000_000_000  // 2026-11-18T…Z: a fixed wall clock, so a run is reproducible

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    let input = UnsafeBufferPointer(start: data, count: size)
    for (n, settings) in settingsFuzzed.enumerated() {
        guard let engine = try? Engine(settings: settings) else { fatalError("the fuzzed settings are valid") }
        var outbox = Outbox()
        var lineStart = 0
        for i in 0...size where i == size || input[i] == UInt8(ascii: "\n") {
            if i > lineStart {
                feedLine(engine, UnsafeBufferPointer(rebasing: input[lineStart..<i]), differential: n == 0, into: &outbox)
            }
            lineStart = i + 1
        }
        check(outbox)
    }
    return 0
}

private let settingsFuzzed: [EngineSettings] = {
    var small = EngineSettings()
    small.outcomeOverdueEnabled = true
    small.outcomeOverdueBusinessDays = 1
    small.nonComplianceWindowMonths = 1
    small.enforcementDeadlineBusinessDays = 1
    small.telephoneOnlyLimitDays = 3
    small.telephoneOnlyPriorityLimitDays = 2
    small.complianceRateMinimumSample = 2
    small.complianceRateWindowDays = 7
    small.contactRetentionDays = 10
    small.videoCountsAsFaceToFace = true
    small.timeZone = "America/Havana"
    return [EngineSettings(), small]
}()

private func feedLine(_ engine: Engine, _ line: UnsafeBufferPointer<UInt8>, differential: Bool, into outbox: inout Outbox) {
    if differential, let difference = ScannerDifferential.difference(body: UnsafeRawBufferPointer(line), topic: nil) {
        fatalError("the engine's reader differs from the reference on \(Array(line)):\n\(difference)")
    }
    if line.first == 1 {
        let body = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: line.dropFirst()))
        let topic: [UInt8] = Array("probation-case.contact.recorded".utf8)
        topic.withUnsafeBytes { engine.process(frameCount: 3, topic: $0, body: body, now: now, into: &outbox) }
        return
    }
    let brace = line.firstIndex(of: UInt8(ascii: "{")) ?? line.endIndex
    if let tab = line[..<brace].firstIndex(of: UInt8(ascii: "\t")) {
        let topic = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: line[..<tab]))
        let body = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: line[(tab + 1)...]))
        engine.process(frameCount: 2, topic: topic, body: body, now: now, into: &outbox)
        return
    }
    let body = UnsafeRawBufferPointer(line)
    let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
    if let type = object?["eventType"] as? String {
        Array(type.utf8).withUnsafeBytes { engine.process(frameCount: 2, topic: $0, body: body, now: now, into: &outbox) }
    } else {
        engine.process(frameCount: 1, topic: nil, body: body, now: now, into: &outbox)
    }
}

private func check(_ outbox: Outbox) {
    var lastSequence: UInt64 = 0
    for message in outbox.messages {
        precondition(!message.topic.isEmpty, "a message without a topic")
        guard let object = (try? JSONSerialization.jsonObject(with: Data(message.body.utf8))) as? [String: Any] else {
            fatalError("published body is not a JSON object: \(message.body)")
        }
        if message.topic.hasPrefix("alert.") {
            guard let sequence = (object["alertSequence"] as? NSNumber)?.uint64Value, sequence > lastSequence else {
                fatalError("alertSequence does not increase after \(lastSequence): \(message.body)")
            }
            lastSequence = sequence
        }
    }
}

#if !FUZZING
@main
enum Reproducer {
    static func main() {
        let paths = CommandLine.arguments.dropFirst()
        if paths.isEmpty {
            FileHandle.standardError.write(Data("usage: contactwatch-fuzz FILE...  (runs each file as one fuzz input)\n".utf8))
            exit(64)
        }
        for path in paths {
            guard let bytes = FileManager.default.contents(atPath: path) else {
                FileHandle.standardError.write(Data("contactwatch-fuzz: cannot read \(path)\n".utf8))
                exit(66)
            }
            _ = bytes.withUnsafeBytes { fuzzOne($0.bindMemory(to: UInt8.self).baseAddress, $0.count) }
        }
        print("contactwatch-fuzz: \(paths.count) inputs, every invariant held")
    }
}
#endif
