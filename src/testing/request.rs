//! How a builder's body leaves it: as bytes, or as an unsigned or signed `POST`. One
//! definition for every body builder of this module ([`MusicCallback`] and
//! [`FamilyCallback`]), each of which has a `to_json(&self) -> serde_json::Value`.
//!
//! [`MusicCallback`]: super::MusicCallback
//! [`FamilyCallback`]: super::FamilyCallback

/// Expands, inside an `impl` block of a builder with `to_json`, to its `body`,
/// `request`, `signed_request` and `signed_request_at`.
macro_rules! body_and_requests {
    () => {
        /// The body as bytes, as the sender puts it on the wire.
        pub fn body(&self) -> ::bytes::Bytes {
            ::bytes::Bytes::from(self.to_json().to_string())
        }

        /// An unsigned `POST` of the body to `uri` with `Content-Type:
        /// application/json`, for a receiver without verification.
        pub fn request(
            &self,
            uri: &str,
        ) -> ::http::Request<::http_body_util::Full<::bytes::Bytes>> {
            $crate::testing::unsigned_request(uri, self.body())
        }

        /// A `POST` of the body to `uri`, signed by `signer` and timestamped now, ready
        /// for `tower::ServiceExt::oneshot` (or any HTTP client, with an absolute
        /// `uri`).
        pub fn signed_request(
            &self,
            signer: &$crate::testing::Signer,
            uri: &str,
        ) -> ::http::Request<::http_body_util::Full<::bytes::Bytes>> {
            signer.request(uri, self.body())
        }

        /// Like [`signed_request`](Self::signed_request), timestamped `unix_seconds`.
        pub fn signed_request_at(
            &self,
            signer: &$crate::testing::Signer,
            uri: &str,
            unix_seconds: i64,
        ) -> ::http::Request<::http_body_util::Full<::bytes::Bytes>> {
            signer.request_at(uri, self.body(), unix_seconds)
        }
    };
}

pub(crate) use body_and_requests;
