import ContactWatchTestThreads
import Foundation
import Testing

@Suite("Deploy/grafana-dashboard.json", .blocking)
struct DashboardTests {
    /// The metric names of cli.md's table.
    static let table: Set<String> = [
        "contactwatch_events_received_total", "contactwatch_events_processed_total", "contactwatch_events_invalid_total",
        "contactwatch_events_ignored_total", "contactwatch_events_duplicate_total", "contactwatch_events_stale_total",
        "contactwatch_alerts_raised_total", "contactwatch_alerts_resolved_total", "contactwatch_stream_gaps_total",
        "contactwatch_input_disconnects_total", "contactwatch_auth_rejected_total", "contactwatch_publish_failures_total",
        "contactwatch_commit_duration_seconds", "contactwatch_event_publish_latency_seconds", "contactwatch_cases",
        "contactwatch_watermark_seconds", "contactwatch_alert_sequence", "contactwatch_subscribers",
    ]

    @Test("is JSON Grafana can import, and every query names metrics the daemon serves, with their labels")
    func dashboardQueries() throws {
        let url = Executables.packageRoot.appendingPathComponent("Deploy/grafana-dashboard.json")
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        #expect(dashboard["title"] as? String == "ContactWatch")
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        #expect(panels.count >= 10)
        var used: Set<String> = []
        for panel in panels {
            let targets = try #require(panel["targets"] as? [[String: Any]], "\(panel["title"] ?? "?")")
            for target in targets {
                let expr = try #require(target["expr"] as? String)
                let regex = try NSRegularExpression(pattern: "contactwatch_[a-z_]+")
                for m in regex.matches(in: expr, range: NSRange(expr.startIndex..., in: expr)) {
                    var name = String(expr[Range(m.range, in: expr)!])
                    for suffix in ["_bucket", "_count", "_sum"] where name.hasSuffix(suffix) && !Self.table.contains(name) {
                        name = String(name.dropLast(suffix.count))
                    }
                    #expect(Self.table.contains(name), "\(panel["title"] ?? "?"): \(name) is not a metric of the spec")
                    used.insert(name)
                }
                // Only the labels the spec gives (rule, socket) plus Prometheus' own (job, instance, le), in a
                // grouping and in a selector's matchers alike.
                for label in ["field", "topic", "endpoint"] { #expect(!expr.contains("by (\(label))"), "\(expr)") }
                let matcher = try NSRegularExpression(pattern: "[{,]\\s*([A-Za-z_][A-Za-z0-9_]*)\\s*(=~|!~|!=|=)")
                for m in matcher.matches(in: expr, range: NSRange(expr.startIndex..., in: expr)) {
                    let label = String(expr[Range(m.range(at: 1), in: expr)!])
                    #expect(["job", "instance", "le", "rule", "socket"].contains(label),
                            "\(panel["title"] ?? "?"): the label \(label) is not one the daemon's metrics carry")
                }
            }
        }
        // The picture the issue asks for: rates per rule, lag of W, both latencies, subscribers.
        for needed in ["contactwatch_alerts_raised_total", "contactwatch_watermark_seconds", "contactwatch_commit_duration_seconds",
                       "contactwatch_event_publish_latency_seconds", "contactwatch_subscribers", "contactwatch_events_invalid_total"] {
            #expect(used.contains(needed), "\(needed) is on no panel")
        }
    }
}
