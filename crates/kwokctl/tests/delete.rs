//! `delete cluster` safety semantics on clusters that need no running `kwok`: upstream-written
//! clusters of the `docker` and `binary` runtimes, unknown runtimes, half-deleted folders.
//! Runtime unavailability is made deterministic with fake engine programs first on PATH.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::TestEnv;

fn failing_docker(env: &TestEnv) {
    env.fake_program(
        "docker",
        "echo 'Cannot connect to the Docker daemon at unix:///nonexistent.sock' >&2\nexit 1",
    );
}

#[test]
fn deleting_a_missing_cluster_warns_and_succeeds() {
    let env = TestEnv::new();
    let run = env.kwokctl(&["delete", "cluster"]).success();
    assert!(run.stderr.contains("Cluster does not exist"), "{run:?}");
    let records = env.audit_records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["result"], "notFound");
    assert_eq!(records[0]["cluster"], "kwok");
}

#[test]
fn unavailable_docker_without_force_keeps_everything() {
    let env = TestEnv::new();
    failing_docker(&env);
    env.write_upstream_cluster("dock", "docker", 32100);
    let kubeconfig_before = fs::read_to_string(&env.kubeconfig).unwrap();
    let config_before = fs::read_to_string(env.cluster_dir("dock").join("kwok.yaml")).unwrap();

    let run = env
        .kwokctl(&["--name", "dock", "delete", "cluster"])
        .failure();
    for needle in [
        r#"runtime "docker""#,
        "Cannot connect to the Docker daemon",
        &env.cluster_dir("dock").display().to_string(),
        "--force",
    ] {
        assert!(
            run.stderr.contains(needle),
            "missing {needle:?} in {}",
            run.stderr
        );
    }
    assert_eq!(
        fs::read_to_string(&env.kubeconfig).unwrap(),
        kubeconfig_before
    );
    assert_eq!(
        fs::read_to_string(env.cluster_dir("dock").join("kwok.yaml")).unwrap(),
        config_before
    );
    assert!(
        env.cluster_dir("dock")
            .join("logs")
            .join("kube-apiserver.log")
            .exists()
    );

    let records = env.audit_records();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record["result"], "aborted");
    assert_eq!(record["runtime"], "docker");
    assert_eq!(record["forced"], false);
    assert_eq!(record["available"], false);
    assert!(
        record["availabilityError"]
            .as_str()
            .unwrap()
            .contains("Cannot connect")
    );
    assert_eq!(record["removed"]["workdir"], serde_json::Value::Null);
}

#[test]
fn unavailable_docker_with_force_removes_everything_reachable() {
    let env = TestEnv::new();
    failing_docker(&env);
    env.write_upstream_cluster("dock", "docker", 32101);
    env.add_kubeconfig_entry("keep", 32102);
    let run = env
        .kwokctl(&["--name", "dock", "delete", "cluster", "--force"])
        .success();
    assert!(
        run.stderr
            .contains("Unavailable runtime but proceed with force delete"),
        "{run:?}"
    );
    assert!(!env.cluster_dir("dock").exists());
    assert_eq!(env.context_names(), vec!["kwok-keep".to_string()]);
    assert_eq!(env.kubeconfig_doc()["current-context"], "kwok-keep");
    let records = env.audit_records();
    let record = records.last().unwrap();
    assert_eq!(record["result"], "deleted");
    assert_eq!(record["forced"], true);
    assert_eq!(record["available"], false);
    assert_eq!(
        record["removed"]["kubeconfigEntries"],
        serde_json::json!(["context/kwok-dock", "cluster/kwok-dock", "user/kwok-dock"])
    );
}

#[test]
fn missing_docker_binary_is_unavailable() {
    let mut env = TestEnv::new();
    env.set_env("PATH", &env.fake_bin.display().to_string());
    env.write_upstream_cluster("dock", "docker", 32103);
    let run = env
        .kwokctl(&["--name", "dock", "delete", "cluster"])
        .failure();
    assert!(run.stderr.contains("executable file not found"), "{run:?}");
    assert!(env.cluster_dir("dock").exists());
}

#[test]
fn available_docker_removes_containers_and_network() {
    let env = TestEnv::new();
    let calls = env.root.path().join("docker-calls");
    env.fake_program(
        "docker",
        &format!("echo \"$@\" >> {}\nexit 0", calls.display()),
    );
    env.write_upstream_cluster("dock", "docker", 32104);
    env.kwokctl(&["--name", "dock", "delete", "cluster"])
        .success();
    let calls = fs::read_to_string(calls).unwrap();
    assert!(calls.contains("version"));
    assert!(calls.contains("rm --force kwok-dock-kwok-controller"));
    assert!(calls.contains("rm --force kwok-dock-etcd"));
    assert!(calls.contains("network rm kwok-dock"));
    assert!(!env.cluster_dir("dock").exists());
}

#[test]
fn hung_engine_times_out() {
    let mut env = TestEnv::new();
    env.fake_program("docker", "exec sleep 60");
    env.set_env("KWOK_RUNTIME_CHECK_TIMEOUT", "500ms");
    env.write_upstream_cluster("dock", "docker", 32105);
    let started = Instant::now();
    let run = env
        .kwokctl(&["--name", "dock", "delete", "cluster"])
        .failure();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(run.stderr.contains("timed out"), "{run:?}");
    assert!(env.cluster_dir("dock").exists());
}

#[test]
fn kind_runtimes_are_recognised() {
    let env = TestEnv::new();
    failing_docker(&env);
    env.fake_program("podman", "exit 0");
    env.fake_program("kind", "exit 0");
    env.write_upstream_cluster("k1", "kind", 32106);
    env.write_upstream_cluster("k2", "kind-podman", 32107);
    let run = env
        .kwokctl(&["--name", "k1", "delete", "cluster"])
        .failure();
    assert!(run.stderr.contains(r#"runtime "kind""#), "{run:?}");
    env.kwokctl(&["--name", "k2", "delete", "cluster"])
        .success();
    assert!(!env.cluster_dir("k2").exists());
}

#[test]
fn unknown_runtime_needs_force() {
    let env = TestEnv::new();
    env.write_upstream_cluster("odd", "rocket", 32108);
    let run = env
        .kwokctl(&["--name", "odd", "delete", "cluster"])
        .failure();
    assert!(
        run.stderr.contains(r#"unknown runtime "rocket""#),
        "{run:?}"
    );
    assert!(env.cluster_dir("odd").exists());
    env.kwokctl(&["--name", "odd", "delete", "cluster", "--force"])
        .success();
    assert!(!env.cluster_dir("odd").exists());
}

#[test]
fn unreadable_config_needs_force() {
    let env = TestEnv::new();
    fs::create_dir_all(env.cluster_dir("bad")).unwrap();
    fs::write(
        env.cluster_dir("bad").join("kwok.yaml"),
        "options: [unclosed",
    )
    .unwrap();
    env.kwokctl(&["--name", "bad", "delete", "cluster"])
        .failure();
    assert!(env.cluster_dir("bad").exists());
    env.kwokctl(&["--name", "bad", "delete", "cluster", "--force"])
        .success();
    assert!(!env.cluster_dir("bad").exists());
}

#[test]
fn all_continues_past_a_failure_and_reports_it() {
    let env = TestEnv::new();
    failing_docker(&env);
    env.write_upstream_cluster("a", "binary", 32110);
    env.write_upstream_cluster("b", "docker", 32111);
    env.write_upstream_cluster("c", "binary", 32112);
    let run = env.kwokctl(&["delete", "cluster", "--all"]).failure();
    assert!(
        run.stderr.contains("failed to delete 1 of 3 clusters: b"),
        "{run:?}"
    );
    assert!(!env.cluster_dir("a").exists());
    assert!(env.cluster_dir("b").exists());
    assert!(!env.cluster_dir("c").exists());
    assert_eq!(env.context_names(), vec!["kwok-b".to_string()]);
    let results: Vec<_> = env
        .audit_records()
        .iter()
        .map(|r| {
            (
                r["cluster"].as_str().unwrap().to_string(),
                r["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        results,
        vec![
            ("a".into(), "deleted".into()),
            ("b".into(), "aborted".into()),
            ("c".into(), "deleted".into())
        ]
    );
    env.kwokctl(&["delete", "cluster", "--all", "--force"])
        .success();
    assert!(!env.cluster_dir("b").exists());
}

#[test]
fn backup_copies_config_pki_logs_and_data_first() {
    let env = TestEnv::new();
    env.write_upstream_cluster("a", "binary", 32113);
    fs::create_dir_all(env.cluster_dir("a").join("etcd")).unwrap();
    fs::write(env.cluster_dir("a").join("etcd").join("db"), "data").unwrap();
    let backup = env.root.path().join("backup");
    let backup_arg = backup.display().to_string();
    env.kwokctl(&["--name", "a", "delete", "cluster", "--backup", &backup_arg])
        .success();
    assert!(!env.cluster_dir("a").exists());
    let copy = backup.join("a");
    assert!(copy.join("kwok.yaml").is_file());
    assert!(copy.join("pki").join("ca.crt").is_file());
    assert!(copy.join("logs").join("kube-apiserver.log").is_file());
    assert_eq!(
        fs::read_to_string(copy.join("etcd").join("db")).unwrap(),
        "data"
    );
    let record = env.audit_records().pop().unwrap();
    assert_eq!(record["backup"], copy.display().to_string());

    // An existing backup is never overwritten; nothing is deleted then.
    env.write_upstream_cluster("a", "binary", 32113);
    let run = env
        .kwokctl(&["--name", "a", "delete", "cluster", "--backup", &backup_arg])
        .failure();
    assert!(run.stderr.contains("already exists"), "{run:?}");
    assert!(env.cluster_dir("a").join("kwok.yaml").exists());
    assert_eq!(env.audit_records().pop().unwrap()["result"], "aborted");
}

#[test]
fn dry_run_deletes_nothing() {
    let env = TestEnv::new();
    failing_docker(&env);
    env.write_upstream_cluster("dock", "docker", 32114);
    let run = env
        .kwokctl(&["--dry-run", "--name", "dock", "delete", "cluster"])
        .success();
    assert!(
        run.stdout.contains("docker rm --force kwok-dock-etcd"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("# Remove context kwok-dock from"));
    assert!(
        run.stdout
            .contains(&format!("rm -rf {}", env.cluster_dir("dock").display()))
    );
    assert!(env.cluster_dir("dock").join("kwok.yaml").exists());
    assert_eq!(env.context_names(), vec!["kwok-dock".to_string()]);
    assert!(env.audit_records().is_empty());
}

#[test]
fn half_deleted_folder_is_cleaned_up() {
    let env = TestEnv::new();
    env.write_upstream_cluster("half", "binary", 32115);
    fs::remove_file(env.cluster_dir("half").join("kwok.yaml")).unwrap();
    let run = env
        .kwokctl(&["--name", "half", "delete", "cluster"])
        .success();
    assert!(run.stderr.contains("Cluster does not exist"));
    assert!(run.stderr.contains("leftovers"), "{run:?}");
    assert!(!env.cluster_dir("half").exists());
    assert!(env.context_names().is_empty());
}

#[test]
fn read_only_kubeconfig_does_not_block_deletion() {
    let env = TestEnv::new();
    env.write_upstream_cluster("a", "binary", 32116);
    let mut perms = fs::metadata(&env.kubeconfig).unwrap().permissions();
    perms.set_readonly(true);
    fs::set_permissions(&env.kubeconfig, perms).unwrap();
    let before = fs::read_to_string(&env.kubeconfig).unwrap();
    let run = env.kwokctl(&["--name", "a", "delete", "cluster"]).success();
    assert!(
        run.stderr
            .contains("Failed to remove context from kubeconfig"),
        "{run:?}"
    );
    assert!(run.stderr.contains("read-only"));
    assert!(!env.cluster_dir("a").exists());
    assert_eq!(fs::read_to_string(&env.kubeconfig).unwrap(), before);
    let record = env.audit_records().pop().unwrap();
    assert_eq!(record["result"], "deleted");
    assert!(record["error"].as_str().unwrap().contains("read-only"));
}

#[test]
fn missing_kubeconfig_is_fine() {
    let env = TestEnv::new();
    env.write_upstream_cluster("a", "binary", 32117);
    fs::remove_file(&env.kubeconfig).unwrap();
    env.kwokctl(&["--name", "a", "delete", "cluster"]).success();
    assert!(!env.kubeconfig.exists());
    assert!(!env.cluster_dir("a").exists());
}

#[test]
fn empty_kubeconfig_flag_is_rejected_before_anything() {
    let env = TestEnv::new();
    env.write_upstream_cluster("a", "binary", 32118);
    let run = env
        .kwokctl(&["--name", "a", "delete", "cluster", "--kubeconfig="])
        .failure();
    assert!(run.stderr.contains("empty path"), "{run:?}");
    assert!(env.cluster_dir("a").exists());
}

#[test]
fn explicit_kubeconfig_flag_is_edited() {
    let env = TestEnv::new();
    env.write_upstream_cluster("a", "binary", 32119);
    let other = env.root.path().join("other-config");
    fs::copy(&env.kubeconfig, &other).unwrap();
    let other_arg = other.display().to_string();
    env.kwokctl(&[
        "--name",
        "a",
        "delete",
        "cluster",
        "--kubeconfig",
        &other_arg,
    ])
    .success();
    assert_eq!(env.context_names(), vec!["kwok-a".to_string()]);
    assert!(!fs::read_to_string(&other).unwrap().contains("kwok-a"));
}

#[test]
fn unavailable_embedded_runtime_needs_force() {
    let mut env = TestEnv::new();
    env.set_env("KWOK_KWOK_BINARY", "/nonexistent/kwok");
    env.write_upstream_cluster("emb", "embedded", 32120);
    let run = env
        .kwokctl(&["--name", "emb", "delete", "cluster"])
        .failure();
    assert!(
        run.stderr.contains("/nonexistent/kwok does not exist"),
        "{run:?}"
    );
    assert!(env.cluster_dir("emb").exists());
    env.kwokctl(&["--name", "emb", "delete", "cluster", "--force"])
        .success();
    assert!(!env.cluster_dir("emb").exists());
}

/// A cluster created with `--kwok-binary` records that kwok; `delete` finds it there as `start`
/// does, with no kwok beside kwokctl or on PATH.
#[test]
fn embedded_runtime_with_its_recorded_kwok_is_available() {
    let env = TestEnv::new();
    let alone = env.root.path().join("alone");
    let elsewhere = env.root.path().join("elsewhere");
    fs::create_dir_all(&alone).unwrap();
    fs::create_dir_all(&elsewhere).unwrap();
    let kwokctl = alone.join("kwokctl");
    fs::copy(common::kwokctl_binary(), &kwokctl).unwrap();
    let kwok = elsewhere.join("kwok");
    fs::write(&kwok, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&kwok, fs::Permissions::from_mode(0o755)).unwrap();
    env.write_upstream_cluster("emb", "embedded", 32121);
    let config = env.cluster_dir("emb").join("kwok.yaml");
    let text = fs::read_to_string(&config).unwrap().replace(
        "- name: kube-apiserver\n",
        &format!("- name: kube-apiserver\n  binary: {}\n", kwok.display()),
    );
    fs::write(&config, text).unwrap();

    let delete = |extra: &[(&str, &str)]| {
        let like = env.kwokctl_command(&["--name", "emb", "delete", "cluster"]);
        let mut command = std::process::Command::new(&kwokctl);
        command.args(like.get_args());
        for (key, value) in like.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command.env("PATH", &env.fake_bin);
        command.envs(extra.iter().copied());
        common::run_with_timeout(command, Duration::from_secs(60))
    };
    fs::rename(&kwok, elsewhere.join("gone")).unwrap();
    let run = delete(&[]).failure();
    assert!(run.stderr.contains("kwok binary not found"), "{run:?}");
    assert!(env.cluster_dir("emb").exists());
    fs::rename(elsewhere.join("gone"), &kwok).unwrap();
    delete(&[]).success();
    assert!(!env.cluster_dir("emb").exists());
}
