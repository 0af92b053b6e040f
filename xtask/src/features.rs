//! `cargo xtask features`: each provider feature builds on its own, in the library and in the
//! `gateway` binary, and a build with one provider contains no other provider's crate.
//!
//! The provider features are read from `cargo metadata`: the features `all-providers` of the
//! umbrella crate lists, each enabling its crate (`gemini = ["dep:gw-gemini"]`). A new provider
//! needs no change here.

use std::process::{Command, ExitCode};

use serde_json::Value;

/// A provider feature of the umbrella crate and the crate it enables.
struct Provider {
    feature: String,
    krate: String,
}

/// The provider features, from the umbrella crate's manifest as `cargo metadata` reads it.
fn providers() -> Result<Vec<Provider>, String> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(crate::workspace_root())
        .output()
        .map_err(|e| format!("cargo metadata did not run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let metadata: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    let umbrella = metadata["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "llm-gateway"))
        .ok_or("cargo metadata lists no llm-gateway package")?;
    let features = &umbrella["features"];
    let names = features["all-providers"]
        .as_array()
        .ok_or("llm-gateway has no `all-providers` feature")?;
    names
        .iter()
        .map(|name| {
            let feature = name.as_str().ok_or("a feature name is not a string")?;
            let krate = features[feature]
                .as_array()
                .and_then(|deps| {
                    deps.iter()
                        .filter_map(Value::as_str)
                        .find_map(|d| d.strip_prefix("dep:"))
                })
                .ok_or(format!("feature `{feature}` enables no `dep:` crate"))?;
            Ok(Provider {
                feature: feature.to_owned(),
                krate: krate.to_owned(),
            })
        })
        .collect()
}

/// Runs `cargo <args>` quietly in the workspace; its stdout, or why it failed.
fn cargo(args: &[&str]) -> Result<String, String> {
    let out = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(crate::workspace_root())
        .output()
        .map_err(|e| format!("cargo did not run: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Checks `package` built with `feature` alone: it compiles, and its dependency tree holds no
/// other provider's crate. Returns the failures.
fn check(package: &str, feature: &str, krate: &str, all: &[Provider]) -> Vec<String> {
    println!("== {package} --no-default-features --features {feature}");
    let selection = [
        "-p",
        package,
        "--no-default-features",
        "--features",
        feature,
    ];
    let mut failures = Vec::new();
    if let Err(e) = cargo(&[&["check", "-q"][..], &selection[..]].concat()) {
        failures.push(format!(
            "{package} does not build with `{feature}` alone:\n{e}"
        ));
        return failures;
    }
    match cargo(&[&["tree", "-q", "-e", "normal"][..], &selection[..]].concat()) {
        Ok(tree) => {
            for other in all.iter().filter(|p| p.krate != krate) {
                if tree
                    .lines()
                    .any(|l| l.contains(&format!(" {} v", other.krate)))
                {
                    failures.push(format!(
                        "{package} with `{feature}` alone pulls in {}",
                        other.krate
                    ));
                }
            }
            if !tree.lines().any(|l| l.contains(&format!(" {krate} v"))) {
                failures.push(format!(
                    "{package} with `{feature}` does not contain {krate}"
                ));
            }
        }
        Err(e) => failures.push(format!("cargo tree failed: {e}")),
    }
    failures
}

pub(crate) fn run() -> ExitCode {
    let providers = match providers() {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => {
            println!("FAIL: llm-gateway's `all-providers` lists no provider");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            println!("FAIL: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failures = Vec::new();
    for p in &providers {
        // The library, and the `gateway` binary, which forwards each provider feature.
        for package in ["llm-gateway", "gw-server"] {
            failures.extend(check(package, &p.feature, &p.krate, &providers));
        }
    }
    for f in &failures {
        println!("FAIL: {f}");
    }
    if failures.is_empty() {
        let names: Vec<&str> = providers.iter().map(|p| p.feature.as_str()).collect();
        println!(
            "every provider feature builds on its own, in the library and the binary: {}",
            names.join(", ")
        );
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
