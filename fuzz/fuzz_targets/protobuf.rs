//! Fuzz target: `application/vnd.kubernetes.protobuf` request bodies and watch frames, decoded
//! to JSON as the API server does; whatever decodes is encoded back, as a protobuf reply would.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Most inputs carry the envelope's magic; add it when missing so every input reaches the
    // message decoder.
    let body: std::borrow::Cow<[u8]> = if data.starts_with(kube_proto::MAGIC) {
        data.into()
    } else {
        [kube_proto::MAGIC, data].concat().into()
    };
    if let Ok(object) = apiserver::decode_body(kube_proto::CONTENT_TYPE, &body, None) {
        let _ = kube_proto::encode(&object);
    }
    let _ = kube_proto::decode_watch_event(data);
});
