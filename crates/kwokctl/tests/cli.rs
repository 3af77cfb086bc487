//! Command-line surface: help, usage errors, completions, configuration precedence, dry runs.
//! None of these need the `kwok` binary.

mod common;

use std::fs;

use common::TestEnv;

#[test]
fn help_is_available_everywhere() {
    let env = TestEnv::new();
    for args in [
        vec!["--help"],
        vec!["create", "--help"],
        vec!["create", "cluster", "--help"],
        vec!["delete", "cluster", "--help"],
        vec!["get", "clusters", "--help"],
        vec!["get", "kubeconfig", "--help"],
        vec!["get", "components", "--help"],
        vec!["start", "cluster", "--help"],
        vec!["stop", "cluster", "--help"],
        vec!["logs", "--help"],
        vec!["export", "logs", "--help"],
        vec!["config", "view", "--help"],
        vec!["completion", "--help"],
    ] {
        let run = env.kwokctl(&args).success();
        assert!(run.stdout.contains("Usage:"), "{args:?}: {run:?}");
    }
    let delete = env.kwokctl(&["delete", "cluster", "--help"]).success();
    for flag in [
        "--force",
        "--all",
        "--kubeconfig",
        "--backup",
        "--name",
        "--dry-run",
    ] {
        assert!(
            delete.stdout.contains(flag),
            "missing {flag}: {}",
            delete.stdout
        );
    }
}

#[test]
fn usage_errors_exit_with_one() {
    let env = TestEnv::new();
    let run = env.kwokctl(&["--no-such-flag"]).failure();
    assert!(run.stderr.contains("--no-such-flag"));
    env.kwokctl(&["create", "cluster", "--kube-apiserver-port", "nope"])
        .failure();
    env.kwokctl(&["get", "clusters", "-o", "yaml"]).failure();
    env.kwokctl(&["frobnicate"]).failure();
    env.kwokctl(&["--name", "../escape", "get", "components"])
        .failure();
}

#[test]
fn completions_for_each_shell() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish"] {
        let run = env.kwokctl(&["completion", shell]).success();
        assert!(run.stdout.contains("kwokctl"), "{shell}");
        assert!(run.stdout.contains("delete"), "{shell}");
    }
    env.kwokctl(&["completion", "tcsh"]).failure();
}

#[test]
fn version_is_printed() {
    let env = TestEnv::new();
    let run = env.kwokctl(&["--version"]).success();
    assert!(run.stdout.starts_with("kwokctl "));
}

#[test]
fn commands_on_a_missing_cluster() {
    let env = TestEnv::new();
    for args in [
        vec!["start", "cluster"],
        vec!["stop", "cluster"],
        vec!["get", "kubeconfig"],
        vec!["get", "components"],
        vec!["logs", "kube-apiserver"],
    ] {
        let run = env.kwokctl(&args).failure();
        assert!(
            run.stderr.contains("Cluster does not exist"),
            "{args:?}: {run:?}"
        );
    }
    let run = env.kwokctl(&["get", "clusters"]).success();
    assert_eq!(run.stdout, "");
}

#[test]
fn create_with_a_runtime_not_supported_yet_fails_clearly() {
    let env = TestEnv::new();
    let run = env
        .kwokctl(&["create", "cluster", "--runtime", "docker"])
        .failure();
    assert!(run.stderr.contains("not supported yet"), "{run:?}");
    let run = env
        .kwokctl(&["create", "cluster", "--runtime", "rocket"])
        .failure();
    assert!(
        run.stderr.contains(r#"runtime "rocket" not found"#),
        "{run:?}"
    );
    assert!(!env.cluster_dir("kwok").exists());
}

#[test]
fn dry_run_create_prints_the_plan_and_touches_nothing() {
    let env = TestEnv::new();
    let run = env
        .kwokctl(&[
            "--dry-run",
            "create",
            "cluster",
            "--kube-apiserver-port",
            "34567",
        ])
        .success();
    assert!(run.stdout.contains("--secure-port 34567"), "{}", run.stdout);
    assert!(run.stdout.contains("apiserver"));
    assert!(run.stdout.contains("# Add context kwok-kwok to"));
    assert!(!env.workdir.exists(), "dry run created the workdir");
    assert!(!env.kubeconfig.exists());
}

fn dry_run_port(env: &TestEnv, args: &[&str]) -> String {
    let mut full = vec!["--dry-run", "create", "cluster"];
    full.extend_from_slice(args);
    let run = env.kwokctl(&full).success();
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("--secure-port"))
        .expect("secure port in plan")
        .to_string();
    line.trim()
        .trim_end_matches('\\')
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn precedence_flags_over_env_over_config_files_over_default_file() {
    let mut env = TestEnv::new();
    fs::create_dir_all(&env.workdir).unwrap();
    let conf = |port: u16| {
        format!(
            "kind: KwokctlConfiguration\napiVersion: config.kwok.x-k8s.io/v1alpha1\noptions:\n  kubeApiserverPort: {port}\n"
        )
    };
    fs::write(env.workdir.join("kwok.yaml"), conf(31001)).unwrap();
    assert_eq!(dry_run_port(&env, &[]), "31001");

    let extra = env.root.path().join("extra.yaml");
    fs::write(&extra, conf(31002)).unwrap();
    let extra = extra.display().to_string();
    assert_eq!(dry_run_port(&env, &["-c", &extra]), "31002");

    env.set_env("KWOK_KUBE_APISERVER_PORT", "31003");
    assert_eq!(dry_run_port(&env, &["-c", &extra]), "31003");

    assert_eq!(
        dry_run_port(&env, &["-c", &extra, "--kube-apiserver-port", "31004"]),
        "31004"
    );
}

#[test]
fn runtime_env_is_honoured_and_flag_wins() {
    let mut env = TestEnv::new();
    env.set_env("KWOK_RUNTIME", "docker");
    let run = env.kwokctl(&["--dry-run", "create", "cluster"]).failure();
    assert!(run.stderr.contains(r#"runtime "docker""#), "{run:?}");
    env.kwokctl(&["--dry-run", "create", "cluster", "--runtime", "embedded"])
        .success();
}

#[test]
fn config_view_tidy_reset() {
    let env = TestEnv::new();
    fs::create_dir_all(&env.workdir).unwrap();
    let a = env.root.path().join("a.yaml");
    fs::write(
        &a,
        "kind: KwokctlConfiguration\napiVersion: config.kwok.x-k8s.io/v1alpha1\noptions:\n  kubeApiserverPort: 32000\n---\nkind: KwokctlConfiguration\napiVersion: config.kwok.x-k8s.io/v1alpha1\noptions:\n  runtime: embedded\n---\nkind: Stage\napiVersion: kwok.x-k8s.io/v1alpha1\nmetadata:\n  name: custom\n",
    )
    .unwrap();
    let a = a.display().to_string();
    let view = env.kwokctl(&["config", "view", "-c", &a]).success();
    assert!(view.stdout.contains("kubeApiserverPort: 32000"));
    assert!(view.stdout.contains("name: custom"));

    env.kwokctl(&["config", "tidy", "-c", &a]).success();
    let tidy = fs::read_to_string(env.workdir.join("kwok.yaml")).unwrap();
    assert_eq!(
        tidy.matches("kind: KwokctlConfiguration").count(),
        1,
        "{tidy}"
    );
    assert!(tidy.contains("kubeApiserverPort: 32000") && tidy.contains("runtime: embedded"));
    assert!(tidy.contains("name: custom"));

    let view = env.kwokctl(&["config", "view"]).success();
    assert!(view.stdout.contains("kubeApiserverPort: 32000"));

    env.kwokctl(&["config", "reset"]).success();
    assert!(!env.workdir.join("kwok.yaml").exists());
    env.kwokctl(&["config", "reset"]).success();
}

#[test]
fn missing_config_file_is_an_error() {
    let env = TestEnv::new();
    let run = env
        .kwokctl(&["-c", "/nonexistent/kwok.yaml", "get", "clusters"])
        .failure();
    assert!(run.stderr.contains("does not exist"), "{run:?}");
}

#[test]
fn get_clusters_lists_upstream_clusters_and_reports_unknown_runtimes() {
    let env = TestEnv::new();
    env.write_upstream_cluster("bin", "binary", 32001);
    env.write_upstream_cluster("odd", "rocket", 32002);
    fs::create_dir_all(env.cluster_dir("empty")).unwrap();
    let names = env.kwokctl(&["get", "clusters"]).success();
    assert_eq!(names.stdout, "bin\nodd\n");
    assert!(
        names
            .stderr
            .contains("Found directory without a config file")
    );
    let wide = env.kwokctl(&["get", "clusters", "-o", "wide"]).success();
    let odd = wide.stdout.lines().find(|l| l.starts_with("odd")).unwrap();
    assert!(
        odd.contains(r#"Failed:unknown runtime "rocket""#),
        "{}",
        wide.stdout
    );
    let bin = wide.stdout.lines().find(|l| l.starts_with("bin")).unwrap();
    assert!(bin.contains("Stopped"), "{}", wide.stdout);
}

#[test]
fn a_closed_stdout_ends_the_output_without_a_panic() {
    let env = common::TestEnv::new();
    let mut child = env
        .kwokctl_command(&["create", "cluster", "--dry-run"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end at once, as `| head -0` would.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
