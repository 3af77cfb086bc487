//! The Job controller: runs pods until `completions` of them succeed (or, without completions,
//! until one succeeds and none is left running), at most `parallelism` at a time; fails the Job
//! after more than `backoffLimit` failed pods or past `activeDeadlineSeconds`; honours `suspend`;
//! and deletes finished Jobs after `ttlSecondsAfterFinished`.

use client::JsonAt;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use client::{Cluster, DeleteParams};
use serde_json::{Map, Value, json};

use crate::informer::{
    Cache, Event, Expectations, Handler, Kind, SyncResult, WorkQueue, annotation, conditions_of,
    controller_key, controller_uid, deletion_order, has_condition, int_at, is_deleting,
    is_pod_ready, key_of, name, namespace, now, observe_pod_expectations, owner_ref, parse_time,
    phase, pod_from_template, set_condition, split_key, timestamp, uid,
};

pub const INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";

pub(crate) struct JobController {
    pub cluster: Arc<dyn Cluster>,
    pub cache: Arc<Cache>,
    pub expectations: Arc<Expectations>,
}

/// Maps changes of Jobs and their pods to the Jobs to sync.
pub(crate) fn handler(queue: Arc<WorkQueue>, expectations: Arc<Expectations>) -> Handler {
    Arc::new(move |_cache: &Cache, ev: &Event| match ev.kind {
        Kind::Job => {
            if let Some(o) = ev.new.as_deref().or(ev.old.as_deref()) {
                queue.add(key_of(o));
            }
        }
        Kind::Pod => {
            observe_pod_expectations(ev, "Job", &expectations);
            let mut keys = HashSet::new();
            for pod in [ev.old.as_deref(), ev.new.as_deref()].into_iter().flatten() {
                if let Some(k) = controller_key(pod, "Job") {
                    keys.insert(k);
                }
            }
            for k in keys {
                queue.add(k);
            }
        }
        _ => {}
    })
}

fn finished(job: &Value) -> bool {
    has_condition(job, "Complete") || has_condition(job, "Failed")
}

fn index_of(pod: &Value) -> Option<i64> {
    annotation(pod, INDEX_ANNOTATION).and_then(|s| s.parse().ok())
}

/// `0-2,4` for {0, 1, 2, 4}.
fn format_indexes(set: &BTreeSet<i64>) -> String {
    let mut parts = Vec::new();
    let mut iter = set.iter().peekable();
    while let Some(&start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

fn parse_indexes(s: &str) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i64>(), b.parse::<i64>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(i) = part.parse() {
                    out.insert(i);
                }
            }
        }
    }
    out
}

impl JobController {
    pub async fn sync(self: Arc<Self>, key: String) -> SyncResult {
        let (ns, job_name) = split_key(&key);
        let Some(job) = self.cache.get(Kind::Job, ns, job_name) else {
            self.expectations.forget(&key);
            return Ok(None);
        };
        if is_deleting(&job) {
            return Ok(None);
        }
        if finished(&job) {
            return self.ttl(&job).await;
        }
        let satisfied = self.expectations.satisfied(&key);
        let job_uid = uid(&job).to_string();
        let pods: Vec<Arc<Value>> = self
            .cache
            .list(Kind::Pod, ns)
            .into_iter()
            .filter(|p| controller_uid(p) == Some(job_uid.as_str()))
            .collect();
        let active: Vec<&Value> = pods
            .iter()
            .map(|p| &**p)
            .filter(|p| !is_deleting(p) && !matches!(phase(p), "Succeeded" | "Failed"))
            .collect();
        let terminating = pods
            .iter()
            .filter(|p| is_deleting(p) && !matches!(phase(p), "Succeeded" | "Failed"))
            .count() as i64;
        let indexed = job.at("/spec/completionMode").and_then(Value::as_str) == Some("Indexed");
        let completions = int_at(&job, "/spec/completions");
        let parallelism = int_at(&job, "/spec/parallelism").unwrap_or(1).max(0);
        let backoff_limit = int_at(&job, "/spec/backoffLimit").unwrap_or(6);
        let suspended = job.at("/spec/suspend") == Some(&json!(true));

        let counted_succeeded = pods.iter().filter(|p| phase(p) == "Succeeded").count() as i64;
        let counted_failed = pods.iter().filter(|p| phase(p) == "Failed").count() as i64;
        let succeeded = counted_succeeded.max(int_at(&job, "/status/succeeded").unwrap_or(0));
        let failed = counted_failed.max(int_at(&job, "/status/failed").unwrap_or(0));
        let mut done_indexes = job
            .at("/status/completedIndexes")
            .and_then(Value::as_str)
            .map(parse_indexes)
            .unwrap_or_default();
        if indexed {
            done_indexes.extend(
                pods.iter()
                    .filter(|p| phase(p) == "Succeeded")
                    .filter_map(|p| index_of(p))
                    .filter(|i| completions.is_none_or(|c| *i < c)),
            );
        }

        let mut status = job
            .get("status")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut conditions = conditions_of(&job);
        let now = now();
        let mut requeue: Option<Duration> = None;
        let mut to_delete: Vec<&Value> = Vec::new();
        let mut to_create: Vec<Option<i64>> = Vec::new();
        let mut finish: Option<(&str, &str, &str)> = None;

        if suspended {
            to_delete.extend(active.iter().copied());
            if set_condition(
                &mut conditions,
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
                false,
            ) {
                status.remove("startTime");
            }
        } else {
            if conditions.iter().any(|c| {
                c.get("type") == Some(&json!("Suspended"))
                    && c.get("status") == Some(&json!("True"))
            }) {
                set_condition(
                    &mut conditions,
                    "Suspended",
                    "False",
                    "JobResumed",
                    "Job resumed",
                    false,
                );
            }
            if !status.contains_key("startTime") {
                status.insert("startTime".into(), json!(timestamp(now)));
            }
            let started = status
                .get("startTime")
                .and_then(Value::as_str)
                .and_then(parse_time)
                .unwrap_or(now);
            let deadline = int_at(&job, "/spec/activeDeadlineSeconds");
            let past_deadline =
                deadline.is_some_and(|d| now.as_second() - started.as_second() >= d);
            if let Some(d) = deadline
                && !past_deadline
            {
                requeue = Some(Duration::from_secs(
                    (d - (now.as_second() - started.as_second())).max(1) as u64,
                ));
            }
            let complete = if indexed {
                completions.is_some_and(|c| done_indexes.len() as i64 >= c)
            } else {
                match completions {
                    Some(c) => succeeded >= c,
                    None => succeeded > 0 && active.is_empty(),
                }
            };
            if failed > backoff_limit {
                finish = Some((
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    "Failed",
                ));
            } else if past_deadline {
                finish = Some((
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                    "Failed",
                ));
            } else if complete {
                finish = Some((
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    "Complete",
                ));
            }
            if finish.is_some() {
                to_delete.extend(active.iter().copied());
            } else if indexed {
                let c = completions.unwrap_or(0);
                let running: HashSet<i64> = active.iter().filter_map(|p| index_of(p)).collect();
                // Duplicate or finished indexes are surplus.
                let mut seen = HashSet::new();
                for p in &active {
                    match index_of(p) {
                        Some(i) if i < c && !done_indexes.contains(&i) && seen.insert(i) => {}
                        _ => to_delete.push(p),
                    }
                }
                let slots = (parallelism - seen.len() as i64).max(0);
                to_create.extend(
                    (0..c)
                        .filter(|i| !done_indexes.contains(i) && !running.contains(i))
                        .take(slots as usize)
                        .map(Some),
                );
            } else {
                let want_active = match completions {
                    Some(c) => parallelism.min((c - succeeded).max(0)),
                    None if succeeded > 0 => active.len() as i64,
                    None => parallelism,
                };
                let have = active.len() as i64;
                if have < want_active {
                    to_create.extend((0..want_active - have).map(|_| None));
                } else if have > want_active {
                    let mut sorted = active.clone();
                    sorted.sort_by(|a, b| deletion_order(a, b));
                    to_delete.extend(sorted.into_iter().take((have - want_active) as usize));
                }
            }
        }

        let mut first_err = None;
        // A finishing Job stops its pods at once: later syncs see it finished and leave them.
        if (satisfied || finish.is_some() || suspended)
            && let Err(e) = self.delete_pods(&job, &key, &to_delete).await
        {
            first_err.get_or_insert(e);
        }
        if satisfied && let Err(e) = self.create_pods(&job, &key, &to_create).await {
            first_err.get_or_insert(e);
        }

        let active_count = if finish.is_some() || suspended {
            0
        } else {
            active.len() as i64 - to_delete.len() as i64
        };
        let ready = active.iter().filter(|p| is_pod_ready(p)).count() as i64;
        status.insert("active".into(), json!(active_count.max(0)));
        status.insert("ready".into(), json!(ready));
        status.insert("terminating".into(), json!(terminating));
        status.insert("succeeded".into(), json!(succeeded));
        status.insert("failed".into(), json!(failed));
        for f in ["active", "succeeded", "failed"] {
            if status.get(f) == Some(&json!(0)) {
                status.remove(f);
            }
        }
        if indexed {
            if done_indexes.is_empty() {
                status.remove("completedIndexes");
            } else {
                status.insert(
                    "completedIndexes".into(),
                    json!(format_indexes(&done_indexes)),
                );
            }
        }
        if let Some((reason, message, kind)) = finish {
            if kind == "Complete" {
                set_condition(
                    &mut conditions,
                    "SuccessCriteriaMet",
                    "True",
                    reason,
                    message,
                    false,
                );
                status.insert("completionTime".into(), json!(timestamp(now)));
            } else {
                set_condition(
                    &mut conditions,
                    "FailureTarget",
                    "True",
                    reason,
                    message,
                    false,
                );
            }
            set_condition(&mut conditions, kind, "True", reason, message, false);
        }
        if conditions.is_empty() {
            status.remove("conditions");
        } else {
            status.insert("conditions".into(), Value::Array(conditions));
        }
        let status = Value::Object(status);
        if job.get("status") != Some(&status) {
            let mut next = (*job).clone();
            next["status"] = status;
            match self
                .cluster
                .update_status(&Kind::Job.resource(), Some(ns), &next)
                .await
            {
                Ok(_) => {
                    if let Some((reason, message, kind)) = finish {
                        if kind == "Complete" {
                            self.event(&job, "Normal", "Completed", "Job completed")
                                .await;
                        } else {
                            self.event(&job, "Warning", reason, message).await;
                        }
                    }
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(requeue),
        }
    }

    async fn event(&self, job: &Value, kind: &str, reason: &str, message: &str) {
        crate::informer::record_event(
            &*self.cluster,
            job,
            ("batch/v1", "Job"),
            "job-controller",
            kind,
            reason,
            message,
        )
        .await;
    }

    async fn delete_pods(&self, job: &Value, key: &str, pods: &[&Value]) -> client::Result<()> {
        if pods.is_empty() {
            return Ok(());
        }
        self.expectations.raise(key, 0, pods.len() as i64);
        let r = Kind::Pod.resource();
        let params = DeleteParams::default();
        let results = futures::future::join_all(pods.iter().map(|p| async {
            let deleted = self
                .cluster
                .delete(&r, Some(namespace(p)), name(p), &params)
                .await?;
            self.event(
                job,
                "Normal",
                "SuccessfulDelete",
                &format!("Deleted pod: {}", name(p)),
            )
            .await;
            Ok::<_, client::Error>(deleted)
        }))
        .await;
        let mut first = None;
        for r in results {
            if let Err(e) = r {
                self.expectations.observed(key, 0, 1);
                if !e.is_not_found() {
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    async fn create_pods(
        &self,
        job: &Value,
        key: &str,
        indexes: &[Option<i64>],
    ) -> client::Result<()> {
        if indexes.is_empty() {
            return Ok(());
        }
        self.expectations.raise(key, indexes.len() as i64, 0);
        let ns = namespace(job);
        let template = job.at("/spec/template").cloned().unwrap_or_default();
        let mut extra = Map::new();
        for (k, v) in [
            ("batch.kubernetes.io/controller-uid", uid(job)),
            ("batch.kubernetes.io/job-name", name(job)),
            ("controller-uid", uid(job)),
            ("job-name", name(job)),
        ] {
            extra.insert(k.into(), json!(v));
        }
        let results = futures::future::join_all(indexes.iter().map(|index| {
            let mut annotations = Map::new();
            let mut labels = extra.clone();
            let generate = match index {
                Some(i) => {
                    annotations.insert(INDEX_ANNOTATION.into(), json!(i.to_string()));
                    labels.insert(INDEX_ANNOTATION.into(), json!(i.to_string()));
                    format!("{}-{i}-", name(job))
                }
                None => format!("{}-", name(job)),
            };
            let mut pod = pod_from_template(
                &template,
                ns,
                &generate,
                owner_ref(job, "batch/v1", "Job"),
                &labels,
                &annotations,
            );
            if let Some(i) = index {
                pod["spec"]["hostname"] = json!(format!("{}-{i}", name(job)));
            }
            let r = Kind::Pod.resource();
            async move {
                let created = self.cluster.create(&r, Some(ns), &pod).await?;
                self.event(
                    job,
                    "Normal",
                    "SuccessfulCreate",
                    &format!("Created pod: {}", name(&created)),
                )
                .await;
                Ok::<_, client::Error>(created)
            }
        }))
        .await;
        let mut first = None;
        for r in results {
            if let Err(e) = r {
                self.expectations.observed(key, 1, 0);
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Deletes a finished Job once `ttlSecondsAfterFinished` has passed.
    async fn ttl(&self, job: &Value) -> SyncResult {
        let Some(ttl) = int_at(job, "/spec/ttlSecondsAfterFinished") else {
            return Ok(None);
        };
        let finished_at = job
            .at("/status/completionTime")
            .and_then(Value::as_str)
            .and_then(parse_time)
            .or_else(|| {
                conditions_of(job)
                    .iter()
                    .find(|c| {
                        matches!(
                            c.get("type").and_then(Value::as_str),
                            Some("Complete" | "Failed")
                        )
                    })
                    .and_then(|c| c.get("lastTransitionTime"))
                    .and_then(Value::as_str)
                    .and_then(parse_time)
            })
            .unwrap_or_else(now);
        let left = finished_at.as_second() + ttl - now().as_second();
        if left > 0 {
            return Ok(Some(Duration::from_secs(left as u64)));
        }
        let params = DeleteParams {
            propagation_policy: Some("Background".into()),
            precondition_uid: Some(uid(job).to_string()),
            ..Default::default()
        };
        match self
            .cluster
            .delete(
                &Kind::Job.resource(),
                Some(namespace(job)),
                name(job),
                &params,
            )
            .await
        {
            Ok(_) => Ok(None),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_ranges() {
        let s: BTreeSet<i64> = [0, 1, 2, 4, 6, 7].into_iter().collect();
        assert_eq!(format_indexes(&s), "0-2,4,6-7");
        assert_eq!(parse_indexes("0-2,4,6-7"), s);
    }
}
