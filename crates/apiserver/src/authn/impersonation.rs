//! `Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid` and `Impersonate-Extra-<key>`
//! headers, as `kubectl --as/--as-group/--as-uid` sends them: each value is checked against the
//! `impersonate` verb (on `users`, `serviceaccounts`, `groups`, `uids` or
//! `userextras/<key>`) for the real requester, then the request runs as the impersonated user.

use axum::http::HeaderMap;

use super::{ANONYMOUS, AUTHENTICATED, SERVICE_ACCOUNTS, UNAUTHENTICATED, UserInfo};
use crate::errors::ApiError;
use crate::rbac::{Attributes, Authorizer};

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA: &str = "impersonate-extra-";

fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// The identity the request acts as: `requester` itself without impersonation headers.
pub fn resolve(
    headers: &HeaderMap,
    requester: UserInfo,
    authorizer: &Authorizer,
) -> Result<UserInfo, ApiError> {
    let user = values(headers, USER);
    let groups = values(headers, GROUP);
    let uid = values(headers, UID);
    let extras: Vec<(String, &str)> = headers
        .iter()
        .filter_map(|(k, v)| {
            let key = k.as_str().strip_prefix(EXTRA)?;
            let key = percent_encoding::percent_decode_str(key)
                .decode_utf8_lossy()
                .into_owned();
            Some((key, v.to_str().ok()?))
        })
        .collect();
    let Some(name) = user.first().copied().filter(|u| !u.is_empty()) else {
        if groups.is_empty() && uid.is_empty() && extras.is_empty() {
            return Ok(requester);
        }
        return Err(ApiError::bad_request(
            "requested impersonation of groups, uid or extra fields without impersonating a user",
        ));
    };
    let check = |group: &str, resource: &str, sub: &str, ns: &str, value: &str| {
        let a = Attributes {
            user: requester.clone(),
            verb: "impersonate".into(),
            namespace: ns.into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: value.into(),
            resource_request: true,
            ..Attributes::default()
        };
        if authorizer.authorize(&a).allowed {
            Ok(())
        } else {
            Err(ApiError::forbidden(a.forbidden_message()))
        }
    };
    let mut impersonated = UserInfo {
        name: name.to_string(),
        ..UserInfo::default()
    };
    match impersonated.service_account() {
        Some((ns, sa)) => {
            check("", "serviceaccounts", "", ns, sa)?;
            if groups.is_empty() {
                impersonated.groups = vec![
                    SERVICE_ACCOUNTS.to_string(),
                    format!("{SERVICE_ACCOUNTS}:{ns}"),
                ];
            }
        }
        None => check("", "users", "", "", name)?,
    }
    for g in &groups {
        check("", "groups", "", "", g)?;
        impersonated.groups.push(g.to_string());
    }
    if let Some(u) = uid.first() {
        check("authentication.k8s.io", "uids", "", "", u)?;
        impersonated.uid = u.to_string();
    }
    for (key, value) in extras {
        check("authentication.k8s.io", "userextras", &key, "", value)?;
        impersonated
            .extra
            .entry(key)
            .or_default()
            .push(value.to_string());
    }
    if name == ANONYMOUS {
        if !impersonated.in_group(UNAUTHENTICATED) {
            impersonated.groups.push(UNAUTHENTICATED.to_string());
        }
    } else if !impersonated.in_group(AUTHENTICATED) && !impersonated.in_group(UNAUTHENTICATED) {
        impersonated.groups.push(AUTHENTICATED.to_string());
    }
    Ok(impersonated)
}
