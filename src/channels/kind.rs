//! What a channel's name makes it (websocket.md §7): the prefix decides whether
//! subscribing needs a signature, whether it is a presence channel, and whether it
//! caches its last event. Reverb tests `cache`, `private`, `presence` without a hyphen.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelKind {
    pub needs_auth: bool,
    pub presence: bool,
    pub caches: bool,
}

impl ChannelKind {
    pub fn of(name: &str) -> ChannelKind {
        let (needs_auth, presence, caches) = if name.starts_with("private-cache-") {
            (true, false, true)
        } else if name.starts_with("presence-cache-") {
            (true, true, true)
        } else if name.starts_with("cache") {
            (false, false, true)
        } else if name.starts_with("private") {
            (true, false, false)
        } else if name.starts_with("presence") {
            (true, true, false)
        } else {
            (false, false, false)
        };
        ChannelKind {
            needs_auth,
            presence,
            caches,
        }
    }
}

/// Channels that only the signed-in user they name may join (websocket.md §14).
pub const USER_CHANNEL_PREFIX: &str = "#server-to-user-";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_in_reverb_order() {
        let k = |n| ChannelKind::of(n);
        assert_eq!(
            k("orders"),
            ChannelKind {
                needs_auth: false,
                presence: false,
                caches: false
            }
        );
        assert_eq!(
            k("private-orders"),
            ChannelKind {
                needs_auth: true,
                presence: false,
                caches: false
            }
        );
        assert_eq!(
            k("privateX"),
            ChannelKind {
                needs_auth: true,
                presence: false,
                caches: false
            }
        );
        assert_eq!(
            k("private-encrypted-x"),
            ChannelKind {
                needs_auth: true,
                presence: false,
                caches: false
            }
        );
        assert_eq!(
            k("private-encrypted-cache-x"),
            ChannelKind {
                needs_auth: true,
                presence: false,
                caches: false
            }
        );
        assert_eq!(
            k("private-cache-x"),
            ChannelKind {
                needs_auth: true,
                presence: false,
                caches: true
            }
        );
        assert_eq!(
            k("presence-room"),
            ChannelKind {
                needs_auth: true,
                presence: true,
                caches: false
            }
        );
        assert_eq!(
            k("presence-cache-room"),
            ChannelKind {
                needs_auth: true,
                presence: true,
                caches: true
            }
        );
        assert_eq!(
            k("cache-ticker"),
            ChannelKind {
                needs_auth: false,
                presence: false,
                caches: true
            }
        );
        assert_eq!(
            k("cacheX"),
            ChannelKind {
                needs_auth: false,
                presence: false,
                caches: true
            }
        );
    }
}
