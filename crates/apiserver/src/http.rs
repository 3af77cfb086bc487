//! The HTTP surface: routing of Kubernetes API paths, content negotiation, body decoding and
//! the encoding of responses (JSON, YAML, Table, PartialObjectMetadata, watch streams).

use crate::objects::JsonAt;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};

use crate::authn::UserInfo;
use crate::discovery;
use crate::errors::{ApiError, ApiResult};
use crate::objects::decode;
use crate::patch::PatchType;
use crate::resources::ResourceType;
use crate::rest::{DeleteOptions, FieldValidation, ListOptions, ListPage, Part, WriteOptions};
use crate::table::{self, IncludeObject};
use crate::{ApiServer, Peer};

/// Largest request body accepted, as kube-apiserver's limit.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

type Query = HashMap<String, String>;

/// How the client wants objects back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Yaml,
    Table(IncludeObject),
    PartialMetadata,
    /// `application/vnd.kubernetes.protobuf`, offered for built-in kinds only.
    Protobuf,
}

fn negotiate(headers: &HeaderMap, query: &Query, r: &ResourceType) -> ApiResult<Format> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.trim().is_empty() {
        return Ok(Format::Json);
    }
    for part in accept.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        let media = params[0];
        let has = |p: &str| params.contains(&p);
        if has("as=Table") && has("g=meta.k8s.io") {
            let include = IncludeObject::parse(query.get("includeObject").map(String::as_str));
            return Ok(Format::Table(include));
        }
        if (has("as=PartialObjectMetadata") || has("as=PartialObjectMetadataList"))
            && has("g=meta.k8s.io")
        {
            return Ok(Format::PartialMetadata);
        }
        if params.iter().any(|p| p.starts_with("as=")) {
            continue;
        }
        match media {
            "application/json"
            | "*/*"
            | "application/*"
            | "application/json-patch+json"
            | "application/merge-patch+json"
            | "application/strategic-merge-patch+json" => {
                return Ok(Format::Json);
            }
            "application/yaml" => return Ok(Format::Yaml),
            kube_proto::CONTENT_TYPE
                if r.custom.is_none() && kube_proto::supports(&r.api_version(), r.kind) =>
            {
                return Ok(Format::Protobuf);
            }
            _ => {}
        }
    }
    Err(ApiError::not_acceptable())
}

/// A built-in object as protobuf, or as JSON when it has no protobuf message (a `Status`
/// reply of an older kind, say), which every protobuf client also reads.
fn protobuf_response(status: StatusCode, object: &Value) -> Response<Body> {
    let api_version = object["apiVersion"].as_str().unwrap_or("");
    let kind = object["kind"].as_str().unwrap_or("");
    if kube_proto::supports(api_version, kind) {
        match kube_proto::encode(object) {
            Ok(bytes) => return respond(status, kube_proto::CONTENT_TYPE, bytes),
            Err(e) => tracing::warn!(error = %e, kind, "protobuf encoding failed; answering JSON"),
        }
    }
    json_response(status, object)
}

fn respond(status: StatusCode, content_type: &str, body: impl Into<Body>) -> Response<Body> {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    resp
}

/// `GET /openapi/v3/<path>[?hash=H]`, cached as kube-apiserver has it cached: a URL with the
/// current hash is immutable, one with an outdated hash is moved to the current one, one
/// without a hash carries only its `ETag`.
fn openapi_v3_document(
    server: &ApiServer,
    path: &str,
    hash: Option<&String>,
) -> ApiResult<Response<Body>> {
    let (document, current) = server
        .openapi_v3(path)
        .ok_or_else(ApiError::not_found_path)?;
    let mut resp = match hash {
        Some(hash) if *hash != current => {
            let mut resp = respond(StatusCode::MOVED_PERMANENTLY, "text/plain", Bytes::new());
            let location = format!("/openapi/v3/{path}?hash={current}");
            if let Ok(location) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, location);
            }
            return Ok(resp);
        }
        Some(_) => {
            let mut resp = respond(StatusCode::OK, "application/json", document);
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, immutable"),
            );
            resp
        }
        None => respond(StatusCode::OK, "application/json", document),
    };
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{current}\"")) {
        resp.headers_mut().insert(header::ETAG, etag);
    }
    Ok(resp)
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    respond(
        status,
        "application/json",
        serde_json::to_vec(v).expect("serialises"),
    )
}

fn error_response(err: ApiError) -> Response<Body> {
    use axum::response::IntoResponse;
    err.into_response()
}

fn add_warnings(resp: &mut Response<Body>, warnings: &[String]) {
    for w in warnings {
        let text = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
}

/// Reads of component statuses carry kube-apiserver's deprecation warning.
fn warn_deprecated(r: &ResourceType, mut resp: Response<Body>) -> Response<Body> {
    if r.is_component_status() {
        add_warnings(
            &mut resp,
            &["v1 ComponentStatus is deprecated in v1.19+".into()],
        );
    }
    resp
}

fn encode_object(
    format: Format,
    r: &ResourceType,
    body: Bytes,
    status: StatusCode,
) -> ApiResult<Response<Body>> {
    match format {
        Format::Json => Ok(respond(status, "application/json", body)),
        Format::Yaml => {
            let v = decode(&body)?;
            let text = serde_saphyr::to_string(&v).map_err(ApiError::internal)?;
            Ok(respond(status, "application/yaml", text))
        }
        Format::Table(include) => {
            let v = decode(&body)?;
            let rv = v
                .at("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(json!(""));
            let t = table::table(r, &[v], json!({"resourceVersion": rv}), include, true);
            let mut resp = json_response(status, &t);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json;as=Table;v=v1;g=meta.k8s.io"),
            );
            Ok(resp)
        }
        Format::PartialMetadata => {
            let v = decode(&body)?;
            Ok(json_response(status, &table::partial_metadata(&v)))
        }
        Format::Protobuf => Ok(protobuf_response(status, &decode(&body)?)),
    }
}

fn decoded_items(page: &ListPage) -> ApiResult<Vec<Value>> {
    page.items.iter().map(|i| decode(i)).collect()
}

fn list_meta(page: &ListPage) -> Value {
    let mut meta = json!({"resourceVersion": page.resource_version.to_string()});
    if let Some(c) = &page.continue_token {
        meta["continue"] = json!(c);
    }
    if let Some(n) = page.remaining {
        meta["remainingItemCount"] = json!(n);
    }
    meta
}

fn encode_list(format: Format, r: &ResourceType, page: ListPage) -> ApiResult<Response<Body>> {
    match format {
        Format::Json => {
            // Items are stored JSON: splice them in without re-encoding.
            let head = json!({
                "kind": r.list_kind(),
                "apiVersion": r.api_version(),
                "metadata": list_meta(&page),
            })
            .to_string();
            let size: usize =
                page.items.iter().map(|i| i.len() + 1).sum::<usize>() + head.len() + 16;
            let mut out = BytesMut::with_capacity(size);
            out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
            out.extend_from_slice(b",\"items\":[");
            for (i, item) in page.items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b",");
                }
                out.extend_from_slice(item);
            }
            out.extend_from_slice(b"]}");
            Ok(respond(StatusCode::OK, "application/json", out.freeze()))
        }
        Format::Yaml => {
            let items = decoded_items(&page)?;
            let v = json!({"kind": r.list_kind(), "apiVersion": r.api_version(), "metadata": list_meta(&page), "items": items});
            let text = serde_saphyr::to_string(&v).map_err(ApiError::internal)?;
            Ok(respond(StatusCode::OK, "application/yaml", text))
        }
        Format::Table(include) => {
            let items = decoded_items(&page)?;
            let t = table::table(r, &items, list_meta(&page), include, true);
            let mut resp = json_response(StatusCode::OK, &t);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json;as=Table;v=v1;g=meta.k8s.io"),
            );
            Ok(resp)
        }
        Format::PartialMetadata => {
            let items: Vec<Value> = page
                .items
                .iter()
                .map(|i| decode(i).map(|v| table::partial_metadata(&v)))
                .collect::<ApiResult<_>>()?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta(&page), "items": items}),
            ))
        }
        Format::Protobuf => {
            let items = decoded_items(&page)?;
            let list = json!({"kind": r.list_kind(), "apiVersion": r.api_version(), "metadata": list_meta(&page), "items": items});
            Ok(protobuf_response(StatusCode::OK, &list))
        }
    }
}

/// Decodes a request body by its content type.
/// The media type of the request body, without parameters (JSON when not given).
fn body_media_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
}

/// Decodes a request body of `media_type` (without parameters) into its JSON value, with
/// kube-apiserver's errors: JSON, YAML and protobuf bodies, of the kind `r` when known.
pub fn decode_body(media_type: &str, body: &[u8], r: Option<&ResourceType>) -> ApiResult<Value> {
    match media_type {
        "application/json"
        | ""
        | "application/json-patch+json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json" => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(match r {
                Some(r) => format!(
                    "{} in version \"{}\" cannot be handled as a {}: json: {}",
                    r.kind, r.version, r.kind, e
                ),
                None => format!("error decoding body: {e}"),
            })
        }),
        "application/yaml" | "application/apply-patch+yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("the body is not valid UTF-8"))?;
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            // JSON is YAML; read it as JSON, whose decoder takes deeper nesting.
            if text.trim_start().starts_with('{')
                && let Ok(v) = serde_json::from_str::<Value>(text)
            {
                return Ok(v);
            }
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
        }
        "application/vnd.kubernetes.protobuf" => crate::protobuf::decode(body, r),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// [`write_options`] plus the repeated keys of a JSON body, which field validation reports.
fn body_write_options(query: &Query, headers: &HeaderMap, body: &[u8]) -> ApiResult<WriteOptions> {
    let mut opts = write_options(query, headers)?;
    let json = matches!(
        body_media_type(headers),
        "application/json"
            | ""
            | "application/merge-patch+json"
            | "application/strategic-merge-patch+json"
    );
    if json && opts.field_validation != FieldValidation::Ignore {
        opts.duplicate_fields = crate::duplicates::duplicate_fields(body);
    }
    Ok(opts)
}

fn write_options(query: &Query, headers: &HeaderMap) -> ApiResult<WriteOptions> {
    let dry_run = match query.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid dryRun: {other:?}: supported values: \"All\""
            )));
        }
    };
    let field_manager = query.get("fieldManager").cloned();
    if field_manager.as_ref().is_some_and(|m| m.len() > 128) {
        return Err(ApiError::bad_request(
            "fieldManager: Too long: may not be more than 128 bytes",
        ));
    }
    Ok(WriteOptions {
        dry_run,
        field_validation: FieldValidation::parse(query.get("fieldValidation").map(String::as_str))?,
        field_manager,
        force: query.get("force").is_some_and(|f| f == "true"),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        applied: false,
        user: None,
        duplicate_fields: Vec::new(),
    })
}

fn parse_bool(query: &Query, key: &str) -> ApiResult<Option<bool>> {
    match query.get(key).map(String::as_str) {
        None | Some("") => Ok(None),
        Some("true") | Some("1") => Ok(Some(true)),
        Some("false") | Some("0") => Ok(Some(false)),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid value for {key}: {other:?}"
        ))),
    }
}

fn list_options(query: &Query) -> ApiResult<ListOptions> {
    let limit = match query.get("limit").map(String::as_str) {
        None | Some("") => 0,
        Some(s) => s
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid value for limit: {s:?}")))?
            .max(0) as usize,
    };
    let timeout_seconds = match query.get("timeoutSeconds").map(String::as_str) {
        None | Some("") => None,
        Some(s) => Some(s.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!("invalid value for timeoutSeconds: {s:?}"))
        })?),
    };
    Ok(ListOptions {
        label_selector: query.get("labelSelector").cloned().unwrap_or_default(),
        field_selector: query.get("fieldSelector").cloned().unwrap_or_default(),
        limit,
        continue_token: query.get("continue").cloned().unwrap_or_default(),
        resource_version: query.get("resourceVersion").cloned().unwrap_or_default(),
        resource_version_match: query
            .get("resourceVersionMatch")
            .cloned()
            .unwrap_or_default(),
        timeout_seconds,
        allow_bookmarks: parse_bool(query, "allowWatchBookmarks")?.unwrap_or(false),
        send_initial_events: parse_bool(query, "sendInitialEvents")?,
        skip_remaining_count: false,
    })
}

fn delete_options(query: &Query, body: &[u8]) -> ApiResult<DeleteOptions> {
    let mut opts = DeleteOptions::from_body(body)?;
    if let Some(g) = query.get("gracePeriodSeconds") {
        opts.grace_period_seconds = Some(g.parse().map_err(|_| {
            ApiError::bad_request(format!("invalid value for gracePeriodSeconds: {g:?}"))
        })?);
    }
    if let Some(p) = query.get("propagationPolicy") {
        opts.propagation_policy = Some(p.clone());
    }
    if query.get("dryRun").is_some_and(|d| d == "All") {
        opts.dry_run = true;
    }
    Ok(opts)
}

/// A resource request after routing.
struct Target {
    r: &'static ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
    /// The path after `nodes/{name}/proxy`, passed on to the node's kubelet.
    proxy_path: String,
}

fn route(registry: &crate::Registry, segments: &[&str]) -> ApiResult<Option<Target>> {
    let (group, version, rest) = match segments {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Ok(None),
    };
    if rest.is_empty() {
        return Ok(None);
    }
    let find = |plural: &str| registry.find(group, version, plural);
    let not_found = ApiError::not_found_path;
    let target = match rest {
        ["namespaces", ns, plural, tail @ ..] if find(plural).is_some_and(|r| r.namespaced) => {
            let r = find(plural).expect("checked");
            match tail {
                [] => Target {
                    r,
                    namespace: Some(ns.to_string()),
                    name: None,
                    sub: None,
                    proxy_path: String::new(),
                },
                [name] => Target {
                    r,
                    namespace: Some(ns.to_string()),
                    name: Some(name.to_string()),
                    sub: None,
                    proxy_path: String::new(),
                },
                [name, sub] => Target {
                    r,
                    namespace: Some(ns.to_string()),
                    name: Some(name.to_string()),
                    sub: Some(sub.to_string()),
                    proxy_path: String::new(),
                },
                _ => return Err(not_found()),
            }
        }
        [plural, tail @ ..] => {
            let r = find(plural).ok_or_else(not_found)?;
            match tail {
                [] => Target {
                    r,
                    namespace: None,
                    name: None,
                    sub: None,
                    proxy_path: String::new(),
                },
                [name] if !r.namespaced => Target {
                    r,
                    namespace: None,
                    name: Some(name.to_string()),
                    sub: None,
                    proxy_path: String::new(),
                },
                [name, sub] if !r.namespaced => Target {
                    r,
                    namespace: None,
                    name: Some(name.to_string()),
                    sub: Some(sub.to_string()),
                    proxy_path: String::new(),
                },
                [name, "proxy", rest @ ..] if !r.namespaced => Target {
                    r,
                    namespace: None,
                    name: Some(name.to_string()),
                    sub: Some("proxy".to_string()),
                    proxy_path: format!("/{}", rest.join("/")),
                },
                _ => return Err(not_found()),
            }
        }
        _ => return Err(not_found()),
    };
    if let Some(sub) = &target.sub
        && !target.r.has_subresource(sub)
    {
        return Err(not_found());
    }
    if let Some(name) = &target.name
        && name.is_empty()
    {
        return Err(not_found());
    }
    Ok(Some(target))
}

/// Serves one request.
pub async fn handle(
    server: Arc<ApiServer>,
    req: Request<Body>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let (mut parts, body) = req.into_parts();
    let tracked = server.metrics.begin(&server.registry, &parts);
    let mut record = server.auditor.get().map(|auditor| {
        let remote = parts.extensions.get::<Peer>().and_then(|p| p.addr);
        crate::audit::Record::begin(auditor, &parts, remote)
    });
    let admitted = admit(&server, &parts, record.as_mut().map(|r| &mut r.facts)).await;
    let record = match record {
        Some(mut r) => decode_path(parts.uri.path())
            .ok()
            .filter(|path| r.decide(&parts, path))
            .map(|_| r),
        None => None,
    };
    let resp = match admitted {
        Ok(user) => {
            parts.extensions.insert(user);
            let resp = match audited_serve(&server, parts, body, record).await {
                Ok(resp) => resp,
                Err(err) => error_response(err),
            };
            match tracked {
                Some(tracked) => tracked.end(resp),
                None => resp,
            }
        }
        Err(err) => {
            let mut resp = error_response(err);
            if let Some(record) = record {
                record.refused(&mut resp);
            }
            resp
        }
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
    Ok(resp)
}

/// Serves an admitted request, with its audit record when the policy selected it: the body
/// is read first when the record wants it, and the answer is written to the log.
async fn audited_serve(
    server: &Arc<ApiServer>,
    parts: axum::http::request::Parts,
    body: Body,
    record: Option<crate::audit::Record>,
) -> ApiResult<Response<Body>> {
    let Some(mut record) = record else {
        return serve(server, Request::from_parts(parts, body)).await;
    };
    let upgrade = parts.headers.contains_key(header::UPGRADE);
    let body = if record.wants_request()
        && !upgrade
        && matches!(
            parts.method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        ) {
        let bytes = match read_body(body).await {
            Ok(bytes) => bytes,
            Err(err) => return Ok(record.finish(error_response(err)).await),
        };
        record.request_body(body_media_type(&parts.headers), &bytes);
        Body::from(bytes)
    } else {
        body
    };
    let resp = match serve(server, Request::from_parts(parts, body)).await {
        Ok(resp) => resp,
        Err(err) => error_response(err),
    };
    Ok(record.finish(resp).await)
}

/// Who the request acts as, once authenticated and authorized.
async fn admit(
    server: &ApiServer,
    req: &axum::http::request::Parts,
    facts: Option<&mut crate::audit::AuthFacts>,
) -> ApiResult<UserInfo> {
    let peer = req.extensions.get::<Peer>().cloned().unwrap_or_default();
    let path = decode_path(req.uri.path())?;
    let query: Vec<(String, String)> =
        form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    server
        .admit(
            &peer,
            &req.headers,
            req.method.as_str(),
            &path,
            &query,
            facts,
        )
        .await
}

/// Bodies past the limit are still read and thrown away, for at most this long, so the client
/// receives the 413 instead of a reset connection.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(30);

async fn read_body(body: Body) -> ApiResult<Bytes> {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    let mut seen = 0usize;
    let mut drain_until = None;
    loop {
        let next = match drain_until {
            None => stream.next().await,
            Some(deadline) => match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
        };
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("read request body: {e}")))?;
        seen = seen.saturating_add(chunk.len());
        if seen <= MAX_BODY {
            buf.extend_from_slice(&chunk);
        } else if drain_until.is_none() {
            buf = BytesMut::new();
            drain_until = Some(tokio::time::Instant::now() + DRAIN_TIME);
        }
    }
    if seen > MAX_BODY {
        return Err(ApiError::too_large());
    }
    Ok(buf.freeze())
}

/// Decodes the percent-escapes of a request path, as Go's server does before routing (the
/// Python client sends `system%3Aview`). A malformed escape is a bad request.
fn decode_path(raw: &str) -> ApiResult<String> {
    let bytes = raw.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%'
            && !bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
        {
            let escape: String = raw[i..].chars().take(3).collect();
            return Err(ApiError::bad_request(format!(
                "invalid URL escape {escape:?}"
            )));
        }
    }
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|p| p.into_owned())
        .map_err(|_| ApiError::bad_request("the request path is not valid UTF-8"))
}

/// A body the client announced as too large and waits to be asked for (`Expect:
/// 100-continue`) is refused before it is sent.
fn refuse_announced_body(headers: &HeaderMap) -> ApiResult<()> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let waits = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if waits && announced.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(ApiError::too_large());
    }
    Ok(())
}

async fn serve(server: &Arc<ApiServer>, req: Request<Body>) -> ApiResult<Response<Body>> {
    refuse_announced_body(req.headers())?;
    let path = decode_path(req.uri().path())?
        .trim_end_matches('/')
        .to_string();
    if let ["apis", group, version, ..] = path
        .split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()[..]
        && let Some(remote) = server.aggregator.remote(&server.registry, group, version)
    {
        let user = requester(req.extensions()).clone();
        return server
            .aggregator
            .proxy(&server.registry, &remote, req, &user)
            .await;
    }
    let (parts, body) = req.into_parts();
    let query: Query = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let headers = parts.headers;
    let method = parts.method;
    let mut extensions = parts.extensions;
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();

    // Non-resource paths.
    match (method.clone(), segments.as_slice()) {
        (Method::GET, ["version"]) => {
            return Ok(json_response(StatusCode::OK, &server.version_info()));
        }
        (Method::GET, ["metrics"]) => {
            let text = server.metrics.render(&server.registry).await;
            return Ok(respond(StatusCode::OK, crate::metrics::CONTENT_TYPE, text));
        }
        (Method::GET, ["healthz" | "livez" | "readyz", ..]) => {
            let (code, text) = crate::health::answer(server, &segments, &raw_query)
                .await
                .ok_or_else(ApiError::not_found_path)?;
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = respond(status, "text/plain; charset=utf-8", text);
            resp.headers_mut().insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            return Ok(resp);
        }
        (Method::GET, [".well-known", "openid-configuration"]) => {
            let tokens = server.tokens().ok_or_else(ApiError::not_found_path)?;
            return Ok(json_response(
                StatusCode::OK,
                &tokens.openid_configuration(),
            ));
        }
        (Method::GET, ["openid", "v1", "jwks"]) => {
            let tokens = server.tokens().ok_or_else(ApiError::not_found_path)?;
            let mut resp = json_response(StatusCode::OK, &tokens.jwks());
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/jwk-set+json"),
            );
            return Ok(resp);
        }
        (Method::GET, ["api"]) => {
            return Ok(match discovery::aggregated_version(&accept) {
                Some(v) => {
                    aggregated_response(discovery::aggregated(&server.registry.types(), true, v), v)
                }
                None => json_response(StatusCode::OK, &discovery::core_versions(&server.address)),
            });
        }
        (Method::GET, ["apis"]) => {
            return Ok(match discovery::aggregated_version(&accept) {
                Some(v) => {
                    let mut list = discovery::aggregated(&server.registry.types(), false, v);
                    server
                        .aggregator
                        .extend_aggregated(&server.registry, &mut list);
                    aggregated_response(list, v)
                }
                None => {
                    let mut list = discovery::group_list(&server.registry.types());
                    server
                        .aggregator
                        .extend_group_list(&server.registry, &mut list);
                    json_response(StatusCode::OK, &list)
                }
            });
        }
        (Method::GET, ["api", "v1"]) => {
            return Ok(json_response(
                StatusCode::OK,
                &discovery::resource_list(&server.registry.types(), "", "v1").expect("core"),
            ));
        }
        (Method::GET, ["apis", group]) => {
            return discovery::group(&server.registry.types(), group)
                .or_else(|| server.aggregator.group(&server.registry, group))
                .map(|g| json_response(StatusCode::OK, &g))
                .ok_or_else(ApiError::not_found_path);
        }
        (Method::GET, ["apis", group, version]) => {
            return discovery::resource_list(&server.registry.types(), group, version)
                .map(|l| json_response(StatusCode::OK, &l))
                .ok_or_else(ApiError::not_found_path);
        }
        (Method::GET, ["openapi", "v2"]) => {
            return Ok(respond(
                StatusCode::OK,
                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                server.openapi_v2(),
            ));
        }
        (Method::GET, ["openapi", "v3"]) => {
            return Ok(respond(
                StatusCode::OK,
                "application/json",
                server.openapi_v3_index(),
            ));
        }
        (Method::GET, ["openapi", "v3", rest @ ..]) => {
            return openapi_v3_document(server, &rest.join("/"), query.get("hash"));
        }
        _ => {}
    }

    // Legacy `bindings` collection: POST /api/v1/namespaces/{ns}/bindings.
    if let (&Method::POST, ["api", "v1", "namespaces", ns, "bindings"]) =
        (&method, segments.as_slice())
    {
        let body = read_body(body).await?;
        let binding = decode_body(body_media_type(&headers), &body, None)?;
        let pod = binding
            .at("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        server.registry.bind(ns, &pod, &binding).await?;
        return Ok(json_response(StatusCode::CREATED, &success_status()));
    }

    let Some(target) = route(&server.registry, &segments)? else {
        return Err(ApiError::not_found_path());
    };
    let r = target.r;
    let ns = target.namespace.as_deref();
    let registry = &server.registry;
    let format = negotiate(&headers, &query, r);
    if !r.is_stored() && !r.is_review() {
        refuse_unserved(r, &method, &query, target.sub.as_deref())?;
    }

    match (method, target.name.as_deref(), target.sub.as_deref()) {
        (Method::GET, None, None) => {
            let opts = list_options(&query)?;
            let watch = parse_bool(&query, "watch")?.unwrap_or(false);
            let format = format?;
            if watch {
                let rx =
                    crate::watch::start(registry.clone(), r, target.namespace.clone(), opts, false)
                        .await?;
                return Ok(watch_response(r, rx, format));
            }
            let page = registry.list(r, ns, &opts).await?;
            encode_list(format, r, page).map(|resp| warn_deprecated(r, resp))
        }
        (Method::GET, Some(name), None) => {
            let format = format?;
            let body = registry
                .get_at_least(
                    r,
                    ns,
                    name,
                    query.get("resourceVersion").map(String::as_str),
                )
                .await?;
            encode_object(format, r, body, StatusCode::OK).map(|resp| warn_deprecated(r, resp))
        }
        (Method::POST, None, None) if r.is_review() => {
            let body = read_body(body).await?;
            let review = decode_body(body_media_type(&headers), &body, Some(r))?;
            let answer = server
                .answer_review(requester(&extensions), r, ns, review)
                .await?;
            Ok(json_response(StatusCode::CREATED, &answer))
        }
        (method, _, _) if r.is_review() => Err(ApiError::method_not_allowed(
            if method == Method::GET {
                "get"
            } else {
                "update"
            },
            Some(r),
        )),
        (Method::POST, None, None) => {
            let format = format?;
            let body = read_body(body).await?;
            let mut obj = decode_body(body_media_type(&headers), &body, Some(r))?;
            server.check_escalation(requester(&extensions), r, ns, &obj)?;
            if std::ptr::eq(r, crate::certificates::resource()) {
                obj = crate::certificates::prepare_create(requester(&extensions), obj)?;
            }
            let written = registry
                .create(
                    r,
                    ns,
                    obj,
                    &body_write_options(&query, &headers, &body)?
                        .by(admission_user(server, &extensions)),
                )
                .await?;
            let mut resp = encode_object(format, r, written.body, StatusCode::CREATED)?;
            add_warnings(&mut resp, &written.warnings);
            Ok(resp)
        }
        (
            Method::PUT,
            Some(name),
            sub @ (None | Some("status") | Some("finalize") | Some("approval")),
        ) => {
            let format = format?;
            let part = match sub {
                Some("status") => Part::Status,
                Some("finalize") => Part::Finalize,
                Some("approval") => {
                    server.check_approval(requester(&extensions), name).await?;
                    Part::Approval
                }
                _ => Part::Main,
            };
            let body = read_body(body).await?;
            let obj = decode_body(body_media_type(&headers), &body, Some(r))?;
            server.check_escalation(requester(&extensions), r, ns, &obj)?;
            let written = registry
                .update(
                    r,
                    ns,
                    name,
                    obj,
                    part,
                    &body_write_options(&query, &headers, &body)?
                        .by(admission_user(server, &extensions)),
                )
                .await?;
            let status = if written.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut resp = encode_object(format, r, written.body, status)?;
            add_warnings(&mut resp, &written.warnings);
            Ok(resp)
        }
        (Method::PATCH, Some(name), sub @ (None | Some("status"))) => {
            let format = format?;
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let patch_type = PatchType::from_content_type(ct)
                .ok_or_else(|| ApiError::unsupported_media_type(ct))?;
            if patch_type == PatchType::Strategic && r.custom.is_some() {
                return Err(ApiError::strategic_patch_of_custom_resource());
            }
            let body = read_body(body).await?;
            let patch = decode_body(body_media_type(&headers), &body, Some(r))?;
            let part = if sub == Some("status") {
                Part::Status
            } else {
                Part::Main
            };
            let opts = body_write_options(&query, &headers, &body)?
                .by(admission_user(server, &extensions));
            let user = requester(&extensions);
            if server.needs_escalation_check(user, r) {
                // The patched object decides: try it without writing first.
                let trial = WriteOptions {
                    dry_run: true,
                    ..opts.clone()
                };
                let tried = registry
                    .patch(r, ns, name, patch_type, patch.clone(), part, &trial)
                    .await?;
                server.check_escalation(user, r, ns, &decode(&tried.body)?)?;
            }
            let written = registry
                .patch(r, ns, name, patch_type, patch, part, &opts)
                .await?;
            let status = if written.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut resp = encode_object(format, r, written.body, status)?;
            add_warnings(&mut resp, &written.warnings);
            Ok(resp)
        }
        (Method::GET, Some(name), Some("status")) => {
            let body = registry.get(r, ns, name).await?;
            encode_object(format?, r, body, StatusCode::OK)
        }
        (Method::GET, Some(name), Some("scale")) => {
            let obj = decode(&registry.get(r, ns, name).await?)?;
            Ok(json_response(StatusCode::OK, &registry.scale_of(r, &obj)))
        }
        (method @ (Method::PUT | Method::PATCH), Some(name), Some("scale")) => {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = read_body(body).await?;
            let input = decode_body(body_media_type(&headers), &body, None)?;
            let opts = write_options(&query, &headers)?;
            let is_put = method == Method::PUT;
            let patch_type = PatchType::from_content_type(&ct);
            if !is_put && patch_type.is_none() {
                return Err(ApiError::unsupported_media_type(&ct));
            }
            let mut compute = |scale: &Value| -> ApiResult<Value> {
                if is_put {
                    return Ok(input.clone());
                }
                let patched = match patch_type.expect("checked") {
                    PatchType::Json => crate::patch::json_patch(scale, &input),
                    PatchType::Merge => crate::patch::merge_patch(scale, &input),
                    _ => crate::patch::merge_patch(scale, &input),
                };
                Ok(patched?)
            };
            let scale = registry
                .update_scale(r, ns, name, &opts, &mut compute)
                .await?;
            Ok(respond(StatusCode::OK, "application/json", scale))
        }
        (Method::DELETE, Some(name), None) => {
            let format = format?;
            let body = read_body(body).await?;
            let opts = delete_options(&query, &body)?.by(admission_user(server, &extensions));
            let deleted = registry.delete(r, ns, name, &opts).await?;
            encode_object(format, r, deleted, StatusCode::OK)
        }
        (Method::DELETE, None, None) => {
            let format = format?;
            let body = read_body(body).await?;
            let opts = delete_options(&query, &body)?.by(admission_user(server, &extensions));
            let list = list_options(&query)?;
            let page = registry.delete_collection(r, ns, &list, &opts).await?;
            encode_list(format, r, page)
        }
        (Method::POST, Some(name), Some("binding")) => {
            let body = read_body(body).await?;
            let binding = decode_body(body_media_type(&headers), &body, None)?;
            registry.bind(ns.unwrap_or(""), name, &binding).await?;
            Ok(json_response(StatusCode::CREATED, &success_status()))
        }
        (Method::POST, Some(name), Some("eviction")) => {
            let body = read_body(body).await?;
            let eviction = decode_body(body_media_type(&headers), &body, None)?;
            let opts = match eviction.get("deleteOptions") {
                Some(d) => DeleteOptions::from_body(d.to_string().as_bytes())?,
                None => DeleteOptions::default(),
            };
            registry.delete(r, ns, name, &opts).await?;
            Ok(json_response(StatusCode::CREATED, &success_status()))
        }
        (
            method @ (Method::GET | Method::POST),
            Some(name),
            Some(sub @ ("exec" | "attach" | "portforward")),
        ) => {
            let pairs: Vec<(String, String)> = form_urlencoded::parse(raw_query.as_bytes())
                .into_owned()
                .collect();
            let mut req = Request::new(body);
            *req.method_mut() = method;
            *req.headers_mut() = headers;
            if let Some(upgrade) = extensions.remove::<hyper::upgrade::OnUpgrade>() {
                req.extensions_mut().insert(upgrade);
            }
            server
                .pod_stream(sub, ns.unwrap_or(""), name, &pairs, req)
                .await
        }
        (method, Some(name), Some("proxy")) if r.kind == "Node" => {
            let mut req = Request::new(body);
            *req.method_mut() = method;
            *req.headers_mut() = headers;
            server
                .node_proxy(name, &target.proxy_path, &raw_query, req)
                .await
        }
        (Method::GET, Some(name), Some("log")) => {
            let pairs: Vec<(String, String)> = form_urlencoded::parse(raw_query.as_bytes())
                .into_owned()
                .collect();
            server.pod_logs(ns.unwrap_or(""), name, &pairs).await
        }
        (Method::POST, Some(name), Some("token")) => {
            let account = decode(&registry.get(r, ns, name).await?)?;
            let body = read_body(body).await?;
            let request = decode_body(body_media_type(&headers), &body, None)?;
            let answer = server
                .request_token(ns.unwrap_or(""), &account, request)
                .await?;
            Ok(json_response(StatusCode::CREATED, &answer))
        }
        (method, _, sub) => {
            let verb = match method {
                Method::GET => "get",
                Method::POST => "create",
                Method::PUT => "update",
                Method::PATCH => "patch",
                Method::DELETE => "delete",
                _ => "unknown",
            };
            let _ = sub;
            Err(ApiError::method_not_allowed(verb, Some(r)))
        }
    }
}

/// Types answered rather than stored serve at most `get` and `list` here (the `bindings`
/// collection's `create` is served before routing); every other verb is refused.
fn refuse_unserved(
    r: &ResourceType,
    method: &Method,
    query: &Query,
    sub: Option<&str>,
) -> ApiResult<()> {
    let watch = parse_bool(query, "watch")?.unwrap_or(false);
    let reads = r.verbs().contains(&"get");
    if *method == Method::GET && !watch && sub.is_none() && reads {
        return Ok(());
    }
    let verb = match *method {
        Method::GET if watch => "watch",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "unknown",
    };
    Err(ApiError::method_not_allowed(verb, None))
}

/// The user the request acts as (set once it was admitted).
/// The requester, handed to writes only while admission webhooks need to be told.
fn admission_user(
    server: &ApiServer,
    extensions: &axum::http::Extensions,
) -> Option<Arc<UserInfo>> {
    server
        .registry
        .admission
        .any()
        .then(|| Arc::new(requester(extensions).clone()))
}

fn requester(extensions: &axum::http::Extensions) -> &UserInfo {
    static NOBODY: std::sync::OnceLock<UserInfo> = std::sync::OnceLock::new();
    extensions
        .get::<UserInfo>()
        .unwrap_or_else(|| NOBODY.get_or_init(UserInfo::anonymous))
}

fn success_status() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

fn aggregated_response(body: Value, version: &str) -> Response<Body> {
    let mut resp = json_response(StatusCode::OK, &body);
    let ct = format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&ct).expect("valid header"),
    );
    resp
}

fn watch_response(
    r: &'static ResourceType,
    rx: crate::watchqueue::Receiver,
    format: Format,
) -> Response<Body> {
    let content_type = match format {
        Format::Table(_) => "application/json;as=Table;v=v1;g=meta.k8s.io",
        Format::Protobuf => kube_proto::WATCH_CONTENT_TYPE,
        _ => "application/json",
    };
    let stream = futures::stream::unfold((rx, true), move |(mut rx, first)| async move {
        loop {
            let ev = rx.recv().await?;
            let frame = match format {
                Format::Table(include) if ev.kind != "ERROR" && ev.kind != "BOOKMARK" => {
                    let Ok(obj) = decode(&ev.object) else {
                        continue;
                    };
                    let rv = obj
                        .at("/metadata/resourceVersion")
                        .cloned()
                        .unwrap_or(json!(""));
                    let t = table::table(r, &[obj], json!({"resourceVersion": rv}), include, first);
                    let mut line = serde_json::to_vec(&json!({"type": ev.kind, "object": t}))
                        .expect("serialises");
                    line.push(b'\n');
                    return Some((Ok::<Bytes, Infallible>(Bytes::from(line)), (rx, false)));
                }
                Format::Protobuf => {
                    let encoded = decode(&ev.object)
                        .map_err(|e| e.message)
                        .and_then(|obj| kube_proto::encode_watch_event(ev.kind, &obj));
                    match encoded {
                        Ok(frame) => Bytes::from(frame),
                        Err(e) => {
                            tracing::warn!(error = %e, "watch event not encodable as protobuf");
                            continue;
                        }
                    }
                }
                Format::PartialMetadata if ev.kind != "ERROR" => {
                    let Ok(obj) = decode(&ev.object) else {
                        continue;
                    };
                    let mut line = serde_json::to_vec(
                        &json!({"type": ev.kind, "object": table::partial_metadata(&obj)}),
                    )
                    .expect("serialises");
                    line.push(b'\n');
                    Bytes::from(line)
                }
                _ => {
                    let mut out = BytesMut::with_capacity(ev.object.len() + 32);
                    out.extend_from_slice(b"{\"type\":\"");
                    out.extend_from_slice(ev.kind.as_bytes());
                    out.extend_from_slice(b"\",\"object\":");
                    out.extend_from_slice(&ev.object);
                    out.extend_from_slice(b"}\n");
                    out.freeze()
                }
            };
            return Some((Ok(frame), (rx, first)));
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    resp
}
