//! API key values: 32 bytes from the operating system's CSPRNG, base64url without padding (43 characters).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::{TryRng, rngs::SysRng};

/// Bytes of entropy in every key: 256 bits.
pub const KEY_BYTES: usize = 32;
/// Length of the encoded key.
pub const KEY_LEN: usize = 43;

/// A freshly generated key. Its `Debug` never shows the value, so it cannot leak through a log line.
pub struct ApiKeyValue(String);

impl ApiKeyValue {
    /// Draws a new key straight from the OS (getrandom), not from a userspace PRNG.
    pub fn generate() -> Result<Self, rand::rngs::SysError> {
        let mut bytes = [0u8; KEY_BYTES];
        SysRng.try_fill_bytes(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeyValue(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_43_base64url_chars_and_differ() {
        let a = ApiKeyValue::generate().unwrap();
        let b = ApiKeyValue::generate().unwrap();
        assert_eq!(a.expose().len(), KEY_LEN);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a.expose(), b.expose());
        let decoded = URL_SAFE_NO_PAD.decode(a.expose()).unwrap();
        assert_eq!(decoded.len(), KEY_BYTES);
    }

    #[test]
    fn debug_never_prints_the_value() {
        let key = ApiKeyValue::generate().unwrap();
        assert!(!format!("{key:?}").contains(key.expose()));
    }
}
