@testable import ContactWatchRuntime
import CoreMetrics
import Prometheus
import Testing

/// Every metric of the daemon carries its `# HELP` text (cli.md's meaning), made through `DescribedPrometheusFactory`.
/// swift-prometheus stops the process when one name is registered with two texts, so every kind of handle of a named
/// metric must get the text, not only the kinds the daemon uses today (a reviewer, session 39).
@Suite("DescribedPrometheusFactory: # HELP for every handle of a named metric")
struct DescribedMetricsFactoryTests {
    @Test("a counter and a floating-point counter, a gauge and a meter, a recorder that aggregates: one text each, no second registration")
    func everyKindDescribed() {
        let registry = PrometheusCollectorRegistry()
        let factory = DescribedPrometheusFactory(PrometheusMetricsFactory(registry: registry),
                                                 help: ["c_total": "a count", "g": "a level", "h": "a spread"])
        Counter(label: "c_total", factory: factory).increment(by: 2)
        FloatingPointCounter(label: "c_total", factory: factory).increment(by: 1.0)
        Gauge(label: "g", factory: factory).record(3)
        Meter(label: "g", factory: factory).set(4)
        Recorder(label: "h", aggregate: true, factory: factory).record(5)
        Counter(label: "plain_total", factory: factory).increment()
        let text = String(decoding: registry.emitToBuffer(), as: UTF8.self)
        #expect(text.contains("# HELP c_total a count\n"), "\(text)")
        #expect(text.contains("# HELP g a level\n"), "\(text)")
        #expect(text.contains("# HELP h a spread\n"), "\(text)")
        #expect(text.contains("# TYPE h histogram\n"), "\(text)")
        #expect(text.contains("plain_total 1") && !text.contains("# HELP plain_total"), "\(text)")
        // The metrics the daemon serves: each with its text.
        let daemon = String(decoding: DaemonMetrics().registry.emitToBuffer(), as: UTF8.self)
        for name in DaemonMetrics.help.keys { #expect(daemon.contains("# HELP \(name) "), "\(name)") }
    }
}
