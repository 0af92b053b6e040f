//! `cargo xtask features`: the umbrella crate builds with each provider feature alone, and a
//! provider's build contains no other provider's crate.

use std::process::{Command, ExitCode};

/// Every provider feature of the umbrella crate and its crate.
const PROVIDERS: &[(&str, &str)] = &[("gemini", "gw-gemini"), ("hf", "gw-hf")];

pub(crate) fn run() -> ExitCode {
    let mut failed = false;
    for (feature, krate) in PROVIDERS {
        println!("== llm-gateway --features {feature}");
        let check = Command::new(env!("CARGO"))
            .args([
                "check",
                "-q",
                "-p",
                "llm-gateway",
                "--no-default-features",
                "--features",
                feature,
            ])
            .current_dir(crate::workspace_root())
            .status();
        if !check.is_ok_and(|s| s.success()) {
            println!("FAIL: cargo check with --features {feature}");
            failed = true;
            continue;
        }
        let tree = Command::new(env!("CARGO"))
            .args([
                "tree",
                "-q",
                "-p",
                "llm-gateway",
                "--no-default-features",
                "--features",
                feature,
                "-e",
                "normal",
            ])
            .current_dir(crate::workspace_root())
            .output();
        let Ok(tree) = tree else {
            println!("FAIL: cargo tree did not run");
            failed = true;
            continue;
        };
        let tree = String::from_utf8_lossy(&tree.stdout);
        for (_, other) in PROVIDERS.iter().filter(|(_, c)| c != krate) {
            if tree.lines().any(|l| l.contains(&format!(" {other} v"))) {
                println!("FAIL: --features {feature} pulls in {other}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        println!("every provider feature builds on its own");
        ExitCode::SUCCESS
    }
}
