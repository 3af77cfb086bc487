//! The CronJob controller: creates a Job named `<cronjob>-<scheduled time in minutes since the
//! epoch>` when a scheduled time is due (the latest one since `status.lastScheduleTime`, or since
//! creation, and within `startingDeadlineSeconds`), honours `suspend` and `concurrencyPolicy`
//! (`Allow`, `Forbid`, `Replace`), keeps `status.active`, `lastScheduleTime` and
//! `lastSuccessfulTime`, and deletes finished Jobs beyond the history limits.

use client::JsonAt;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use client::{Cluster, DeleteParams};
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::cron::Schedule;
use crate::informer::{
    Cache, Event, Handler, Kind, SyncResult, WorkQueue, controller_key, controller_uid, creation,
    has_condition, int_at, is_deleting, key_of, name, namespace, owner_ref, parse_time, split_key,
    timestamp, uid,
};

pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// More missed start times than this get a warning.
const TOO_MANY_MISSED: i64 = 100;

pub(crate) struct CronJobController {
    pub cluster: Arc<dyn Cluster>,
    pub cache: Arc<Cache>,
    pub clock: fn() -> Timestamp,
}

/// Maps changes of CronJobs and their Jobs to the CronJobs to sync.
pub(crate) fn handler(queue: Arc<WorkQueue>) -> Handler {
    Arc::new(move |_cache: &Cache, ev: &Event| {
        let mut keys = HashSet::new();
        match ev.kind {
            Kind::CronJob => {
                if let Some(o) = ev.new.as_deref().or(ev.old.as_deref()) {
                    keys.insert(key_of(o));
                }
            }
            Kind::Job => {
                for job in [ev.old.as_deref(), ev.new.as_deref()].into_iter().flatten() {
                    if let Some(k) = controller_key(job, "CronJob") {
                        keys.insert(k);
                    }
                }
            }
            _ => {}
        }
        for k in keys {
            queue.add(k);
        }
    })
}

/// `<cronjob>-<minutes since the epoch>`, as kube-controller-manager names scheduled Jobs.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

fn finished(job: &Value) -> Option<&'static str> {
    if has_condition(job, "Complete") {
        Some("Complete")
    } else if has_condition(job, "Failed") {
        Some("Failed")
    } else {
        None
    }
}

fn job_ref(job: &Value) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": name(job),
        "namespace": namespace(job),
        "uid": uid(job),
        "resourceVersion": crate::informer::resource_version_of(job),
    })
}

/// The Job for one scheduled time: the template's metadata and spec, owned by the CronJob.
pub fn new_job(cronjob: &Value, scheduled: Timestamp) -> Value {
    let template = cronjob
        .at("/spec/jobTemplate")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut annotations = template
        .at("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), json!(timestamp(scheduled)));
    let mut meta = json!({
        "name": job_name(name(cronjob), scheduled),
        "namespace": namespace(cronjob),
        "annotations": annotations,
        "ownerReferences": [owner_ref(cronjob, "batch/v1", "CronJob")],
    });
    if let Some(l) = template.at("/metadata/labels") {
        meta["labels"] = l.clone();
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    })
}

/// The finished Jobs to delete: the oldest beyond each history limit.
pub fn jobs_beyond_history<'a>(
    jobs: &[&'a Value],
    successful_limit: i64,
    failed_limit: i64,
) -> Vec<&'a Value> {
    let started = |j: &Value| {
        j.at("/status/startTime")
            .and_then(Value::as_str)
            .unwrap_or_else(|| creation(j))
            .to_string()
    };
    let mut out = Vec::new();
    for (kind, limit) in [("Complete", successful_limit), ("Failed", failed_limit)] {
        let mut done: Vec<&Value> = jobs
            .iter()
            .copied()
            .filter(|j| finished(j) == Some(kind))
            .collect();
        done.sort_by_key(|j| (started(j), name(j).to_string()));
        let excess = done.len().saturating_sub(limit.max(0) as usize);
        out.extend(done.into_iter().take(excess));
    }
    out
}

impl CronJobController {
    async fn event(&self, cj: &Value, kind: &str, reason: &str, message: &str) {
        crate::informer::record_event(
            &*self.cluster,
            cj,
            ("batch/v1", "CronJob"),
            "cronjob-controller",
            kind,
            reason,
            message,
        )
        .await;
    }

    async fn delete_job(&self, cj: &Value, job_name: &str) -> client::Result<()> {
        let params = DeleteParams {
            propagation_policy: Some("Background".into()),
            ..Default::default()
        };
        match self
            .cluster
            .delete(
                &Kind::Job.resource(),
                Some(namespace(cj)),
                job_name,
                &params,
            )
            .await
        {
            Ok(_) => {
                self.event(
                    cj,
                    "Normal",
                    "SuccessfulDelete",
                    &format!("Deleted job {job_name}"),
                )
                .await;
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn sync(self: Arc<Self>, key: String) -> SyncResult {
        let (ns, cj_name) = split_key(&key);
        let Some(cj) = self.cache.get(Kind::CronJob, ns, cj_name) else {
            return Ok(None);
        };
        let now = (self.clock)();
        let cj_uid = uid(&cj).to_string();
        let jobs: Vec<Arc<Value>> = self
            .cache
            .list(Kind::Job, ns)
            .into_iter()
            .filter(|j| controller_uid(j) == Some(cj_uid.as_str()))
            .collect();
        let mut status = cj
            .get("status")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut active: Vec<Value> = status
            .get("active")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let ref_uid = |r: &Value| r.get("uid").and_then(Value::as_str).map(String::from);

        // Active Jobs: add running ones we own, drop finished and vanished ones.
        for job in &jobs {
            let listed = active
                .iter()
                .any(|r| ref_uid(r).as_deref() == Some(uid(job)));
            match finished(job) {
                Some(condition) if listed => {
                    active.retain(|r| ref_uid(r).as_deref() != Some(uid(job)));
                    self.event(
                        &cj,
                        "Normal",
                        "SawCompletedJob",
                        &format!("Saw completed job: {}, condition: {condition}", name(job)),
                    )
                    .await;
                }
                None if !listed && !is_deleting(job) => active.push(job_ref(job)),
                _ => {}
            }
        }
        let mut kept = Vec::new();
        for r in active {
            let in_cache = jobs.iter().any(|j| Some(uid(j)) == ref_uid(&r).as_deref());
            if in_cache {
                kept.push(r);
                continue;
            }
            // Not seen yet, or gone: ask the cluster.
            let job_name = r.get("name").and_then(Value::as_str).unwrap_or_default();
            match self
                .cluster
                .get(&Kind::Job.resource(), Some(ns), job_name)
                .await
            {
                Ok(live)
                    if Some(uid(&live)) == ref_uid(&r).as_deref() && finished(&live).is_none() =>
                {
                    kept.push(r)
                }
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        let mut active = kept;
        let last_success = jobs
            .iter()
            .filter(|j| finished(j) == Some("Complete"))
            .filter_map(|j| j.at("/status/completionTime").and_then(Value::as_str))
            .filter_map(parse_time)
            .max();
        let recorded_success = status
            .get("lastSuccessfulTime")
            .and_then(Value::as_str)
            .and_then(parse_time);
        if let Some(t) = last_success
            && recorded_success.is_none_or(|r| r < t)
        {
            status.insert("lastSuccessfulTime".into(), json!(timestamp(t)));
        }

        let job_refs: Vec<&Value> = jobs.iter().map(|j| &**j).collect();
        for old in jobs_beyond_history(
            &job_refs,
            int_at(&cj, "/spec/successfulJobsHistoryLimit").unwrap_or(3),
            int_at(&cj, "/spec/failedJobsHistoryLimit").unwrap_or(1),
        ) {
            self.delete_job(&cj, name(old)).await?;
        }

        let mut requeue = None;
        let suspended = cj.at("/spec/suspend") == Some(&json!(true));
        if !is_deleting(&cj) && !suspended {
            requeue = self
                .schedule(&cj, now, &jobs, &mut active, &mut status)
                .await?;
        }
        if active.is_empty() {
            status.remove("active");
        } else {
            status.insert("active".into(), Value::Array(active));
        }
        let status = Value::Object(status);
        if cj.get("status").unwrap_or(&json!({})) != &status {
            let mut next = (*cj).clone();
            next["status"] = status;
            match self
                .cluster
                .update_status(&Kind::CronJob.resource(), Some(ns), &next)
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(requeue)
    }

    /// Starts the Job of the latest due time, if any; returns when to look again.
    async fn schedule(
        &self,
        cj: &Value,
        now: Timestamp,
        jobs: &[Arc<Value>],
        active: &mut Vec<Value>,
        status: &mut Map<String, Value>,
    ) -> client::Result<Option<Duration>> {
        let spec = cj
            .at("/spec/schedule")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let zone = cj.at("/spec/timeZone").and_then(Value::as_str);
        let schedule = match Schedule::parse(spec, zone) {
            Ok(s) => s,
            Err(e) => {
                let reason = if e.starts_with("unknown time zone") {
                    "UnknownTimeZone"
                } else {
                    "UnparseableSchedule"
                };
                self.event(
                    cj,
                    "Warning",
                    reason,
                    &format!("unparseable schedule: {spec:?} : {e}"),
                )
                .await;
                return Ok(None);
            }
        };
        let wait_for_next = |now: Timestamp| {
            schedule.next_after(now).map(|next| {
                Duration::from_millis(
                    (next.as_millisecond() - now.as_millisecond()).max(0) as u64 + 100,
                )
            })
        };
        let deadline = int_at(cj, "/spec/startingDeadlineSeconds");
        let mut earliest = status
            .get("lastScheduleTime")
            .and_then(Value::as_str)
            .and_then(parse_time)
            .or_else(|| parse_time(creation(cj)))
            .unwrap_or(now);
        if let Some(d) = deadline
            && let Ok(limit) = now.checked_sub(jiff::SignedDuration::from_secs(d))
            && limit > earliest
        {
            earliest = limit;
        }
        let (due, missed) = schedule.most_recent(earliest, now);
        let Some(due) = due else {
            return Ok(wait_for_next(now));
        };
        if missed > TOO_MANY_MISSED {
            self.event(
                cj,
                "Warning",
                "TooManyMissedTimes",
                &format!("too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"),
            )
            .await;
        }
        let name_due = job_name(name(cj), due);
        if jobs.iter().any(|j| name(j) == name_due)
            || active
                .iter()
                .any(|r| r.get("name").and_then(Value::as_str) == Some(name_due.as_str()))
        {
            status.insert("lastScheduleTime".into(), json!(timestamp(due)));
            return Ok(wait_for_next(now));
        }
        let policy = cj
            .at("/spec/concurrencyPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Allow");
        if policy == "Forbid" && !active.is_empty() {
            // The time stays due and is taken once the running Job ends, if still in time.
            return Ok(wait_for_next(now));
        }
        if policy == "Replace" {
            for r in std::mem::take(active) {
                if let Some(n) = r.get("name").and_then(Value::as_str) {
                    self.delete_job(cj, n).await?;
                }
            }
        }
        let job = new_job(cj, due);
        match self
            .cluster
            .create(&Kind::Job.resource(), Some(namespace(cj)), &job)
            .await
        {
            Ok(created) => {
                self.event(
                    cj,
                    "Normal",
                    "SuccessfulCreate",
                    &format!("Created job {}", name(&created)),
                )
                .await;
                active.push(job_ref(&created));
            }
            Err(e) if e.reason == "AlreadyExists" => {
                let live = self
                    .cluster
                    .get(&Kind::Job.resource(), Some(namespace(cj)), &name_due)
                    .await?;
                if controller_uid(&live) != Some(uid(cj)) {
                    self.event(
                        cj,
                        "Warning",
                        "FailedCreate",
                        &format!("Error creating job: {e}"),
                    )
                    .await;
                    return Ok(wait_for_next(now));
                }
                if finished(&live).is_none() {
                    active.push(job_ref(&live));
                }
            }
            Err(e) => {
                self.event(
                    cj,
                    "Warning",
                    "FailedCreate",
                    &format!("Error creating job: {e}"),
                )
                .await;
                return Err(e);
            }
        }
        status.insert("lastScheduleTime".into(), json!(timestamp(due)));
        Ok(wait_for_next(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_count_minutes_since_the_epoch() {
        let t: Timestamp = "2024-03-01T10:15:00Z".parse().unwrap();
        assert_eq!(job_name("backup", t), "backup-28488135");
    }

    #[test]
    fn jobs_carry_the_template_and_the_scheduled_time() {
        let cj = json!({
            "metadata": {"name": "c", "namespace": "ns", "uid": "u"},
            "spec": {"jobTemplate": {"metadata": {"labels": {"a": "b"}},
                "spec": {"template": {"spec": {"containers": []}}}}},
        });
        let t: Timestamp = "2024-03-01T10:15:00Z".parse().unwrap();
        let job = new_job(&cj, t);
        assert_eq!(job["metadata"]["name"], "c-28488135");
        assert_eq!(job["metadata"]["labels"]["a"], "b");
        assert_eq!(
            job["metadata"]["annotations"][SCHEDULED_TIMESTAMP],
            "2024-03-01T10:15:00Z"
        );
        assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
        assert!(job["spec"]["template"].is_object());
    }

    #[test]
    fn history_limits_delete_the_oldest_finished_jobs() {
        let job = |name: &str, started: &str, condition: Option<&str>| {
            let mut j = json!({"metadata": {"name": name}, "status": {"startTime": started}});
            if let Some(c) = condition {
                j["status"]["conditions"] = json!([{"type": c, "status": "True"}]);
            }
            j
        };
        let jobs = [
            job("s1", "2024-01-01T00:01:00Z", Some("Complete")),
            job("s2", "2024-01-01T00:02:00Z", Some("Complete")),
            job("s3", "2024-01-01T00:03:00Z", Some("Complete")),
            job("f1", "2024-01-01T00:04:00Z", Some("Failed")),
            job("f2", "2024-01-01T00:05:00Z", Some("Failed")),
            job("running", "2024-01-01T00:00:00Z", None),
        ];
        let refs: Vec<&Value> = jobs.iter().collect();
        let gone: Vec<&str> = jobs_beyond_history(&refs, 2, 1)
            .into_iter()
            .map(name)
            .collect();
        assert_eq!(gone, ["s1", "f1"]);
        let gone: Vec<&str> = jobs_beyond_history(&refs, 0, 0)
            .into_iter()
            .map(name)
            .collect();
        assert_eq!(gone, ["s1", "s2", "s3", "f1", "f2"]);
    }
}
