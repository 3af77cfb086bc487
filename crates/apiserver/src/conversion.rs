//! Conversion of custom resources between the versions of a CRD whose `spec.conversion` names a
//! webhook: objects are stored in the storage version and converted by a ConversionReview
//! (`apiextensions.k8s.io/v1`) on the way in (creates and updates in another version) and on the
//! way out (gets, lists, watches and write responses in another version), as kube-apiserver does.
//! The webhook is reached like admission webhooks (`upstream.rs`).

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::errors::{ApiError, ApiResult};
use crate::objects;
use crate::resources::ResourceType;
use crate::rest::Registry;
use crate::upstream::Endpoint;

/// kube-apiserver gives a conversion webhook 30 seconds.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The webhook configuration of `r`, when its CRD converts through one.
fn webhook(r: &ResourceType) -> Option<&'static Value> {
    r.custom?.conversion_webhook.as_ref()
}

fn api_version(r: &ResourceType, version: &str) -> String {
    format!("{}/{version}", r.group)
}

fn api_version_of(o: &Value) -> &str {
    o.get("apiVersion").and_then(Value::as_str).unwrap_or("")
}

impl Registry {
    /// Whether objects of `r` are converted by a webhook and `r` is not the storage version.
    pub(crate) fn converts(&self, r: &ResourceType) -> bool {
        webhook(r).is_some() && r.custom.is_some_and(|c| c.storage_version != r.version)
    }

    /// `objects` in `version` of `r`'s CRD; objects already in it are not sent.
    pub(crate) async fn convert(
        &self,
        r: &ResourceType,
        mut objects: Vec<Value>,
        version: &str,
    ) -> ApiResult<Vec<Value>> {
        let Some(hook) = webhook(r) else {
            return Ok(objects);
        };
        let desired = api_version(r, version);
        let pending: Vec<usize> = (0..objects.len())
            .filter(|&i| api_version_of(&objects[i]) != desired)
            .collect();
        if pending.is_empty() {
            return Ok(objects);
        }
        let sent: Vec<Value> = pending.iter().map(|&i| objects[i].clone()).collect();
        let converted = self.review(r, hook, &desired, sent).await?;
        for (i, object) in pending.into_iter().zip(converted) {
            objects[i] = object;
        }
        Ok(objects)
    }

    /// One object in `version`.
    pub(crate) async fn convert_one(
        &self,
        r: &ResourceType,
        object: Value,
        version: &str,
    ) -> ApiResult<Value> {
        Ok(self
            .convert(r, vec![object], version)
            .await?
            .pop()
            .expect("one object in, one out"))
    }

    /// Stored bytes presented in the version `r` serves.
    pub(crate) async fn present_converted(
        &self,
        r: &ResourceType,
        stored: Bytes,
    ) -> ApiResult<Bytes> {
        if webhook(r).is_none() {
            return Ok(crate::crd::present(r, stored));
        }
        Ok(self
            .present_all(r, vec![stored])
            .await?
            .pop()
            .expect("one in, one out"))
    }

    /// Stored objects presented in the version `r` serves, converted in one review.
    pub(crate) async fn present_all(
        &self,
        r: &ResourceType,
        items: Vec<Bytes>,
    ) -> ApiResult<Vec<Bytes>> {
        if webhook(r).is_none() {
            return Ok(items
                .into_iter()
                .map(|b| crate::crd::present(r, b))
                .collect());
        }
        let wanted = api_version(r, r.version);
        let pending: Vec<usize> = (0..items.len())
            .filter(|&i| !crate::crd::has_api_version(&items[i], &wanted))
            .collect();
        if pending.is_empty() {
            return Ok(items);
        }
        let decoded = pending
            .iter()
            .map(|&i| objects::decode(&items[i]))
            .collect::<ApiResult<Vec<_>>>()?;
        let converted = self.convert(r, decoded, r.version).await?;
        let mut items = items;
        for (i, object) in pending.into_iter().zip(converted) {
            items[i] = Bytes::from(serde_json::to_vec(&object).expect("serialises"));
        }
        Ok(items)
    }

    async fn review(
        &self,
        r: &ResourceType,
        hook: &Value,
        desired: &str,
        objects: Vec<Value>,
    ) -> ApiResult<Vec<Value>> {
        let failed = |why: String| {
            ApiError::internal(format!(
                "conversion webhook for {}, Kind={} failed: {why}",
                api_version(r, r.version),
                r.kind
            ))
        };
        let client_config = hook.get("clientConfig").cloned().unwrap_or(Value::Null);
        let endpoint = Endpoint::from_client_config(&client_config)
            .ok_or_else(|| failed("the webhook has no clientConfig".into()))?;
        let ca_bundle = client_config
            .get("caBundle")
            .and_then(Value::as_str)
            .and_then(|b| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.decode(b).ok()
            })
            .unwrap_or_default();
        let uid = objects::new_uid();
        let count = objects.len();
        let review = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "ConversionReview",
            "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objects},
        });
        let body = Bytes::from(serde_json::to_vec(&review).expect("serialises"));
        // Boxed: reaching a Service reads objects, whose reads may convert.
        let answer = Box::pin(
            self.upstream
                .post(self, &endpoint, &ca_bundle, TIMEOUT, body),
        )
        .await
        .map_err(failed)?;
        let response = answer.get("response").cloned().unwrap_or(Value::Null);
        if response.get("uid").and_then(Value::as_str) != Some(uid.as_str()) {
            return Err(failed(format!("expected response.uid={uid:?}")));
        }
        if response.pointer("/result/status").and_then(Value::as_str) != Some("Success") {
            let message = response
                .pointer("/result/message")
                .and_then(Value::as_str)
                .unwrap_or("the webhook did not report success");
            return Err(failed(format!("conversion request failed: {message}")));
        }
        let converted = response
            .get("convertedObjects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if converted.len() != count {
            return Err(failed(format!(
                "expected {count} converted objects, got {}",
                converted.len()
            )));
        }
        if let Some(wrong) = converted.iter().find(|o| api_version_of(o) != desired) {
            return Err(failed(format!(
                "invalid converted object: expected apiVersion {desired:?}, got {:?}",
                api_version_of(wrong)
            )));
        }
        Ok(converted)
    }
}
