//! Decoding of `application/vnd.kubernetes.protobuf` request bodies into JSON objects.

use serde_json::Value;

use crate::errors::ApiError;
use crate::resources::ResourceType;

/// Decodes a protobuf-encoded built-in object (the `k8s\0` envelope) into its JSON form.
pub fn decode(body: &[u8], r: Option<&ResourceType>) -> Result<Value, ApiError> {
    if r.is_some_and(|r| r.custom.is_some()) {
        return Err(ApiError::unsupported_media_type(
            "application/vnd.kubernetes.protobuf",
        ));
    }
    kube_proto::decode(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request could not be decoded as protobuf: {e}"
        ))
    })
}
