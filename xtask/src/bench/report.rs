//! The report: markdown tables of a run, and writing them into `BENCHMARKS.md` between the
//! `<!-- bench:begin -->` and `<!-- bench:end -->` markers (the text around them is kept).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use super::load::Outcome;
use super::suite::{Env, Measured, Results, Scenario};

const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";

/// What the figures were measured on.
pub(crate) struct Machine {
    cpus: usize,
    model: String,
    memory: String,
    kernel: String,
    rustc: String,
    nginx: Option<String>,
    commit: String,
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    // nginx -v writes to stderr.
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    Some(String::from_utf8_lossy(&text).trim().to_owned()).filter(|s| !s.is_empty())
}

impl Machine {
    pub(crate) fn detect(env: &Env) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|kb| kb.trim().strip_suffix("kB"))
            .and_then(|kb| kb.trim().parse::<f64>().ok())
            .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
            .unwrap_or_else(|| "unknown".into());
        let root = crate::workspace_root();
        let root = root.to_string_lossy();
        let commit = command_output("git", &["-C", &root, "rev-parse", "--short", "HEAD"])
            .unwrap_or_else(|| "unknown".into());
        let dirty = command_output("git", &["-C", &root, "status", "--porcelain"]).is_some();
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            model,
            memory,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".into()),
            rustc: command_output("rustc", &["--version"]).unwrap_or_else(|| "unknown".into()),
            nginx: env.nginx.as_ref().and_then(|n| {
                command_output(&n.to_string_lossy(), &["-v"])
                    .map(|v| v.trim_start_matches("nginx version: ").to_owned())
            }),
            commit: if dirty {
                format!("{commit} (with uncommitted changes)")
            } else {
                commit
            },
        }
    }
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn signed_ms(us: f64) -> String {
    format!("{:+.2}", us / 1000.0)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn q(o: &Outcome, quantile: f64) -> u64 {
    o.latency.value_at_quantile(quantile)
}

fn find<'a>(
    runs: &'a [Measured],
    scenario: &str,
    target: &str,
    concurrency: usize,
) -> Option<&'a Measured> {
    runs.iter()
        .find(|m| m.scenario == scenario && m.target == target && m.concurrency == concurrency)
}

/// `m`'s latency at `quantile` minus the direct run's, in µs.
fn added(runs: &[Measured], m: &Measured, quantile: f64, ttfb: bool) -> Option<f64> {
    let direct = find(runs, m.scenario, "direct", m.concurrency)?;
    let pick = |o: &Outcome| {
        if ttfb {
            o.ttfb.value_at_quantile(quantile)
        } else {
            o.latency.value_at_quantile(quantile)
        }
    };
    Some(pick(&m.outcome) as f64 - pick(&direct.outcome) as f64)
}

/// The markdown between the markers.
pub(crate) fn render(results: &Results, machine: &Machine, command: &str) -> String {
    let plan = &results.plan;
    let mut s = String::new();
    let date = gw_store::format_utc(results.started);
    let _ = writeln!(s, "## Latest run\n");
    let _ = writeln!(
        s,
        "`{command}`, {date}, commit {}, {:.0} s in all.\n",
        machine.commit,
        results.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "Machine: {} CPUs ({}), {} memory, Linux {}; {}; nginx {}. Load generator, mock upstream \
         and the server under test share these CPUs; load average {} at the start, {} at the \
         end. The gateway logs one line per request (its default `info` level) to a file.\n",
        machine.cpus,
        machine.model,
        machine.memory,
        machine.kernel,
        machine.rustc,
        machine.nginx.as_deref().unwrap_or("not installed"),
        results.load_average.0,
        results.load_average.1,
    );
    let _ = writeln!(
        s,
        "Each run: {} clients, each on one kept-alive HTTP/1.1 connection, sending requests back \
         to back; {:.1} s warm-up, then {:.1} s measured. Latency is from sending the request to \
         the last byte of the answer; *added* is the target's percentile minus the same \
         percentile calling the mock directly at the same concurrency. CPU columns are the CPU \
         time the process used per request (user + system, 10 ms ticks over the window). \
         Targets: `direct` (the mock itself), `nginx` (proxy_pass with a keep-alive upstream \
         pool), `floor` (`cargo xtask bench floor`: hyper's server and hyper-util's pooled client \
         on one current-thread runtime per core, as the gateway runs them, forwarding the request and \
         the answer untouched: what the gateway's stack costs before any of its own work), \
         `proxy` (gateway, `[store] enabled = false`), `full-sqlite` / `full-postgres` \
         (gateway with plans, cost and usage log), `proxy-otel` (`proxy` with \
         `[telemetry]` on: every span and metric exported over OTLP/HTTP to a local receiver that \
         accepts and drops them, `/metrics` served), `proxy-cache` (`proxy` with the exact \
         response cache on, in memory: every request after the first is answered from it).\n",
        plan.concurrency
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(" / "),
        plan.warmup.as_secs_f64(),
        plan.duration.as_secs_f64(),
    );
    for note in &results.notes {
        let _ = writeln!(s, "Note: {note}.\n");
    }

    targets(&mut s, results);

    for scenario in &plan.scenarios {
        scenario_table(&mut s, results, *scenario);
    }
    if !results.pacing.is_empty() {
        pacing_table(&mut s, results);
    }
    memory_table(&mut s, results);
    if !results.growth.is_empty() {
        growth_table(&mut s, results);
    }
    if !results.semantic.is_empty() {
        semantic_table(&mut s, results);
    }
    s
}

/// The row of a target that holds `m`'s throughput to `want`% of nginx's (`unit` a second).
fn share_of_nginx(
    s: &mut String,
    label: &str,
    m: &Measured,
    nginx: &Measured,
    want: u32,
    unit: &str,
) {
    let share = m.outcome.throughput() / nginx.outcome.throughput().max(1.0) * 100.0;
    let _ = writeln!(
        s,
        "| {label} | {} | {share:.0}% ({:.0} {unit}) | {} |",
        m.scenario,
        m.outcome.throughput(),
        verdict(Some(share >= f64::from(want)))
    );
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "n/a",
    }
}

fn targets(s: &mut String, results: &Results) {
    let runs = &results.runs;
    let top = results.plan.concurrency.iter().copied().max().unwrap_or(64);
    let _ = writeln!(s, "### Targets\n");
    let _ = writeln!(s, "| target | scenario | measured | verdict |");
    let _ = writeln!(s, "| --- | --- | --- | --- |");
    let fulls: Vec<&str> = results
        .targets
        .iter()
        .copied()
        .filter(|t| t.starts_with("full"))
        .collect();
    for scenario in ["hf", "gemini"] {
        let Some(nginx) = find(runs, scenario, "nginx", top) else {
            continue;
        };
        let n50 = added(runs, nginx, 0.5, false).unwrap_or(0.0);
        let n99 = added(runs, nginx, 0.99, false).unwrap_or(0.0);
        let _ = writeln!(
            s,
            "| reference: nginx adds about 0.5 ms p50 / 1.2 ms p99 at c{top} | {scenario} | {} / {} ms, {:.0} req/s | - |",
            signed_ms(n50),
            signed_ms(n99),
            nginx.outcome.throughput()
        );
        if let Some(floor) = find(runs, scenario, "floor", top) {
            let _ = writeln!(
                s,
                "| reference: the floor proxy (hyper's server and pooled client on the gateway's runtimes, nothing else) at c{top} | {scenario} | {:.0}% of nginx ({:.0} req/s), {} / {} ms, {:.0} us CPU a request (nginx {:.0}) | - |",
                floor.outcome.throughput() / nginx.outcome.throughput().max(1.0) * 100.0,
                floor.outcome.throughput(),
                signed_ms(added(runs, floor, 0.5, false).unwrap_or(0.0)),
                signed_ms(added(runs, floor, 0.99, false).unwrap_or(0.0)),
                floor.target_cpu_us,
                nginx.target_cpu_us,
            );
        }
        if let Some(proxy) = find(runs, scenario, "proxy", top) {
            // Issue 10's targets: 90% and an added p50 within 1.2x nginx's on the Hugging Face
            // route, 75% on the Gemini route (translated both ways), whose p50 has none.
            let (want, p50_target) = match scenario {
                "gemini" => (75, false),
                _ => (90, true),
            };
            share_of_nginx(
                s,
                &format!("proxy: throughput >= {want}% of nginx at c{top}"),
                proxy,
                nginx,
                want,
                "req/s",
            );
            let p50 = added(runs, proxy, 0.5, false).unwrap_or(0.0);
            let (label, verdict) = match p50_target {
                true => (
                    "proxy: added p50 <= 1.2x nginx's",
                    verdict(Some(p50 <= 1.2 * n50.max(0.0))),
                ),
                false => ("reference: proxy's added p50 against nginx's", "-"),
            };
            let _ = writeln!(
                s,
                "| {label} at c{top} | {scenario} | {} ms vs {} ms ({:.1}x) | {verdict} |",
                signed_ms(p50),
                signed_ms(n50),
                p50 / n50.max(1.0),
            );
        }
        for full in &fulls {
            let Some(m) = find(runs, scenario, full, top) else {
                continue;
            };
            share_of_nginx(
                s,
                &format!("{full}: throughput >= 70% of nginx at c{top}"),
                m,
                nginx,
                70,
                "req/s",
            );
            let p99 = added(runs, m, 0.99, false).unwrap_or(0.0);
            let _ = writeln!(
                s,
                "| {full}: added p99 <= 2 ms at c{top} | {scenario} | {} ms | {} |",
                signed_ms(p99),
                verdict(Some(p99 <= 2000.0))
            );
        }
    }
    for scenario in ["hf", "gemini"] {
        let (Some(off), Some(on)) = (
            find(runs, scenario, "proxy", top),
            find(runs, scenario, "proxy-otel", top),
        ) else {
            continue;
        };
        let change = on.outcome.throughput() / off.outcome.throughput().max(1.0) - 1.0;
        let _ = writeln!(
            s,
            "| telemetry: OTLP traces + metrics + /metrics on (proxy-otel vs proxy) at c{top} | {scenario} | throughput {:+.0}%, CPU {:+.0} us/request, added p99 {} vs {} ms | - |",
            change * 100.0,
            on.target_cpu_us - off.target_cpu_us,
            signed_ms(added(runs, on, 0.99, false).unwrap_or(0.0)),
            signed_ms(added(runs, off, 0.99, false).unwrap_or(0.0)),
        );
    }
    for scenario in ["hf", "gemini"] {
        let (Some(proxied), Some(hit)) = (
            find(runs, scenario, "proxy", top),
            find(runs, scenario, "proxy-cache", top),
        ) else {
            continue;
        };
        let faster = hit.outcome.throughput() > proxied.outcome.throughput();
        let (hit50, proxied50) = (
            added(runs, hit, 0.5, false).unwrap_or(0.0),
            added(runs, proxied, 0.5, false).unwrap_or(0.0),
        );
        let _ = writeln!(
            s,
            "| cache: exact hits faster than a proxied call at c{top} | {scenario} | {:.0} vs {:.0} req/s, p50 {} vs {} ms (direct's p50 subtracted from both) | {} |",
            hit.outcome.throughput(),
            proxied.outcome.throughput(),
            signed_ms(hit50),
            signed_ms(proxied50),
            verdict(Some(faster && hit50 <= proxied50))
        );
    }
    let c = if results.plan.concurrency.contains(&16) {
        16
    } else {
        top
    };
    for scenario in ["stream", "stream-gemini"] {
        let Some(nginx) = find(runs, scenario, "nginx", c) else {
            continue;
        };
        let n = added(runs, nginx, 0.5, true).unwrap_or(0.0);
        if let Some(floor) = find(runs, scenario, "floor", c) {
            let _ = writeln!(
                s,
                "| reference: the floor proxy's added TTFB p50 at c{c} | {scenario} | {} ms vs nginx {} ms, {:.0}% of nginx's streams/s | - |",
                signed_ms(added(runs, floor, 0.5, true).unwrap_or(0.0)),
                signed_ms(n),
                floor.outcome.throughput() / nginx.outcome.throughput().max(1.0) * 100.0,
            );
        }
        for t in results
            .targets
            .iter()
            .filter(|t| t.starts_with("proxy") || t.starts_with("full"))
        {
            let Some(m) = find(runs, scenario, t, c) else {
                continue;
            };
            let a = added(runs, m, 0.5, true).unwrap_or(0.0);
            let _ = writeln!(
                s,
                "| {t}: added TTFB p50 <= nginx's + 0.3 ms at c{c} | {scenario} | {} ms vs nginx {} ms | {} |",
                signed_ms(a),
                signed_ms(n),
                verdict(Some(a <= n + 300.0))
            );
        }
        if let Some(proxy) = find(runs, scenario, "proxy", c) {
            share_of_nginx(
                s,
                &format!("proxy: streams/s >= 80% of nginx's at c{c}"),
                proxy,
                nginx,
                80,
                "streams/s",
            );
        }
    }
    for m in &results.pacing {
        // `proxy-cache` replays the first stream from its cache, at once: nothing to pace.
        if m.target == "direct" || m.target == "proxy-cache" || m.outcome.gaps.is_empty() {
            continue;
        }
        let g = &m.outcome.gaps;
        let ok = g.min() >= 90_000 && g.value_at_quantile(0.99) <= 110_000 && m.outcome.errors == 0;
        let _ = writeln!(
            s,
            "| {}: chunks 100 ms apart upstream arrive 100 ms apart (c16) | pacing | gaps min {} / p50 {} / p99 {} ms | {} |",
            m.target,
            ms(g.min()),
            ms(g.value_at_quantile(0.5)),
            ms(g.value_at_quantile(0.99)),
            verdict(Some(ok))
        );
    }
    for m in results.memory.iter().filter(|m| m.streams.is_some()) {
        let _ = writeln!(
            s,
            "| {}: RSS <= 50 MB idle | memory | {} | {} |",
            m.target,
            mb(m.idle),
            verdict(Some(m.idle <= 50_000_000))
        );
        let open = m.streams.as_ref().map_or(0, |o| o.max_open);
        let ok_streams = m.streams.as_ref().map_or(0, |o| o.ok);
        let _ = writeln!(
            s,
            "| {}: RSS <= 200 MB with {} streams open | memory | {} ({} open at once, {} completed) | {} |",
            m.target,
            results.plan.streams,
            mb(m.peak),
            open,
            ok_streams,
            verdict(Some(m.peak <= 200_000_000 && open >= results.plan.streams))
        );
    }
    for g in &results.growth {
        let (b, a) = (q(&g.before, 0.99), q(&g.after, 0.99));
        let ok = a as f64 <= b as f64 * 1.10 + 200.0;
        let _ = writeln!(
            s,
            "| {}: p99 does not grow with {} usage rows (c{top}) | growth | p99 {} ms -> {} ms | {} |",
            g.target,
            g.rows_after,
            ms(b),
            ms(a),
            verdict(Some(ok))
        );
    }
    let _ = writeln!(
        s,
        "\n(\"does not grow\": the p99 after is at most 10% + 0.2 ms above the p99 before; \
         \"arrive 100 ms apart\": no gap under 90 ms and p99 at most 110 ms.)\n"
    );
}

fn scenario_table(s: &mut String, results: &Results, scenario: Scenario) {
    let runs = &results.runs;
    let _ = writeln!(s, "### {}: {}\n", scenario.name(), scenario.title());
    let streams = scenario.streams();
    let mut header = String::from(
        "| c | target | req/s | p50 ms | p90 ms | p99 ms | added p50 | added p90 | added p99 |",
    );
    let mut rule = String::from("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    if streams {
        header.push_str(" TTFB p50 | TTFB p99 | added TTFB p50 | added TTFB p99 |");
        rule.push_str(" ---: | ---: | ---: | ---: |");
    }
    header.push_str(" CPU µs/req | mock CPU µs/req | errors |");
    rule.push_str(" ---: | ---: | ---: |");
    let _ = writeln!(s, "{header}\n{rule}");
    for m in runs.iter().filter(|m| m.scenario == scenario.name()) {
        let o = &m.outcome;
        let add = |qu: f64, ttfb: bool| {
            if m.target == "direct" {
                "-".to_owned()
            } else {
                added(runs, m, qu, ttfb).map_or("-".into(), signed_ms)
            }
        };
        let mut row = format!(
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
            m.concurrency,
            m.target,
            o.throughput(),
            ms(q(o, 0.5)),
            ms(q(o, 0.9)),
            ms(q(o, 0.99)),
            add(0.5, false),
            add(0.9, false),
            add(0.99, false),
        );
        if streams {
            let _ = write!(
                row,
                " {} | {} | {} | {} |",
                ms(o.ttfb.value_at_quantile(0.5)),
                ms(o.ttfb.value_at_quantile(0.99)),
                add(0.5, true),
                add(0.99, true),
            );
        }
        let errors = match &o.first_error {
            Some(e) => format!("{} ({})", o.errors, e.replace('|', "/")),
            None => o.errors.to_string(),
        };
        let _ = write!(
            row,
            " {:.0} | {:.0} | {} |",
            m.target_cpu_us, m.mock_cpu_us, errors
        );
        let _ = writeln!(s, "{row}");
    }
    let _ = writeln!(s);
}

fn pacing_table(s: &mut String, results: &Results) {
    let _ = writeln!(
        s,
        "### pacing: 5 chunks 100 ms apart upstream, 16 clients, Hugging Face route\n"
    );
    let _ = writeln!(
        s,
        "| target | streams | TTFB p50 ms | gap min ms | gap p50 ms | gap p99 ms | gap max ms | errors |"
    );
    let _ = writeln!(
        s,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for m in &results.pacing {
        let o = &m.outcome;
        let g = &o.gaps;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            m.target,
            o.ok,
            ms(o.ttfb.value_at_quantile(0.5)),
            ms(g.min()),
            ms(g.value_at_quantile(0.5)),
            ms(g.value_at_quantile(0.99)),
            ms(g.max()),
            o.errors
        );
    }
    let _ = writeln!(s);
}

fn memory_table(s: &mut String, results: &Results) {
    if results.memory.is_empty() {
        return;
    }
    let _ = writeln!(s, "### memory: gateway RSS (VmRSS / VmHWM from /proc)\n");
    let _ = writeln!(
        s,
        "| configuration | when | RSS after start | peak RSS | streams completed | most open at once | TTFB p99 ms | errors |"
    );
    let _ = writeln!(s, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for m in &results.memory {
        match &m.streams {
            None => {
                let _ = writeln!(
                    s,
                    "| {} | whole main run | {} | {} | - | - | - | - |",
                    m.target,
                    mb(m.idle),
                    mb(m.peak)
                );
            }
            Some(o) => {
                let _ = writeln!(
                    s,
                    "| {} | {} slow streams (1 chunk/s) | {} | {} | {} | {} | {} | {} |",
                    m.target,
                    results.plan.streams,
                    mb(m.idle),
                    mb(m.peak),
                    o.ok,
                    o.max_open,
                    ms(o.ttfb.value_at_quantile(0.99)),
                    o.errors
                );
            }
        }
    }
    let _ = writeln!(s);
}

fn growth_table(s: &mut String, results: &Results) {
    let top = results.plan.concurrency.iter().copied().max().unwrap_or(64);
    let _ = writeln!(
        s,
        "### growth: `hf` at c{top} on a fresh store, then after {} more usage-log rows\n",
        results.plan.prefill_rows
    );
    let _ = writeln!(
        s,
        "| store | usage rows | req/s | p50 ms | p90 ms | p99 ms | errors |"
    );
    let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for g in &results.growth {
        for (rows, o) in [(g.rows_before, &g.before), (g.rows_after, &g.after)] {
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {} | {} | {} | {} |",
                g.target,
                rows,
                o.throughput(),
                ms(q(o, 0.5)),
                ms(q(o, 0.9)),
                ms(q(o, 0.99)),
                o.errors
            );
        }
        let _ = writeln!(
            s,
            "| {} | (prefill took {:.1} s) | | | | | |",
            g.target,
            g.prefill.as_secs_f64()
        );
    }
    let _ = writeln!(s);
}

const TEMPLATE_HEAD: &str = "# Benchmarks\n\n\
Figures from `cargo xtask bench`: the gateway against a mock upstream on loopback, next to the \
mock called directly and to nginx as a plain reverse proxy. See below for how to rerun them.\n\n";

/// Writes `section` between the markers of `path`, creating the file if it is missing.
pub(crate) fn write(path: &Path, section: &str) -> Result<(), String> {
    let block = format!("{BEGIN}\n{section}{END}");
    let text = match std::fs::read_to_string(path) {
        Ok(old) => match (old.find(BEGIN), old.find(END)) {
            (Some(b), Some(e)) if b < e => {
                format!("{}{block}{}", &old[..b], &old[e + END.len()..])
            }
            _ => format!("{old}\n{block}\n"),
        },
        Err(_) => format!("{TEMPLATE_HEAD}{block}\n"),
    };
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn semantic_table(s: &mut String, results: &Results) {
    let _ = writeln!(
        s,
        "### semantic cache: one lookup in a namespace of {} entries of {} dimensions\n",
        super::semantic::ENTRIES,
        super::semantic::DIMENSIONS
    );
    let _ = writeln!(
        s,
        "The time a semantic lookup adds besides its embedding call (the provider's time): \
         finding the nearest entry. On Redis, each replica mirrors the namespaces it looks up \
         and fetches only entries newer than its mirror, so the first lookup loads the \
         namespace and later ones scan memory.\n"
    );
    let _ = writeln!(
        s,
        "| backend | fill (s) | first lookup ms | p50 ms | p99 ms |"
    );
    let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: |");
    for l in &results.semantic {
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.2} | {:.2} | {:.2} |",
            l.backend,
            l.fill.as_secs_f64(),
            l.first.as_secs_f64() * 1e3,
            l.p50.as_secs_f64() * 1e3,
            l.p99.as_secs_f64() * 1e3
        );
    }
    let _ = writeln!(s);
}
