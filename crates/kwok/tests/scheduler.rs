//! The scheduler end to end: `kwok apiserver --simulate` with kubectl creating nodes and pods.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Server, write};

#[test]
fn kubectl_pods_are_scheduled_and_run_on_simulated_nodes() {
    let server = Server::start_with(&["--simulate"]);
    let mut manifest = String::new();
    for i in 0..3 {
        manifest.push_str(&format!(
            "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: node-{i}\n  labels:\n    type: kwok\n"
        ));
    }
    for i in 0..20 {
        manifest.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p-{i}\nspec:\n  containers:\n  - name: app\n    image: nginx\n    resources:\n      requests:\n        cpu: \"100\"\n"
        ));
    }
    let file = write(server.dir.path(), "cluster.yaml", &manifest);
    server.ok(33, &["apply", "-f", file.to_str().unwrap()]);

    let deadline = Instant::now() + Duration::from_secs(60);
    let placement = loop {
        let out = server.ok(
            33,
            &[
                "get",
                "pods",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase}{\"\\n\"}{end}",
            ],
        );
        let rows: Vec<Vec<String>> = out
            .lines()
            .map(|l| l.split_whitespace().map(String::from).collect())
            .collect();
        if rows.len() == 20 && rows.iter().all(|r| r.len() == 3 && r[2] == "Running") {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "pods did not all run:\n{out}\n{}",
            server.ok(33, &["get", "events"])
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for row in &placement {
        *per_node.entry(row[1].as_str()).or_default() += 1;
    }
    assert_eq!(per_node.len(), 3, "{per_node:?}");
    assert!(per_node.values().all(|&n| n >= 5), "{per_node:?}");

    let events = server.ok(33, &["get", "events"]);
    assert!(events.contains("Scheduled"), "{events}");
    assert!(
        events.contains("Successfully assigned default/p-0 to node-"),
        "{events}"
    );
    let reasons = server.ok(33, &["get", "events", "-o", "jsonpath={.items[*].reason}"]);
    assert_eq!(
        reasons
            .split_whitespace()
            .filter(|r| *r == "Scheduled")
            .count(),
        20,
        "{reasons}"
    );
    let conditions = server.ok(
        33,
        &[
            "get",
            "pod",
            "p-0",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].status}",
        ],
    );
    assert_eq!(conditions, "True");
}
