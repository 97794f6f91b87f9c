//! Presence membership, kept by the channel's owner shard alone (design invariant 7).
//!
//! Members are distinct `user_id`s (compared as strings) in first-join order; each
//! remembers the sockets that hold it, on any shard, so `member_added` fires on a
//! user's first join and `member_removed` on the last leave across all shards.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::pusher::socket_id::SocketId;

/// The shard that owns presence state for (app, channel). A fixed-key hash, so every
/// shard computes the same owner.
pub fn owner(app: usize, channel: &str, shards: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    app.hash(&mut hasher);
    channel.hash(&mut hasher);
    (hasher.finish() % shards as u64) as usize
}

/// A member's identity as the string Reverb compares (`7` and `"7"` are one user).
/// `None` for a missing or null id: such a subscription is not a member.
pub fn user_key(user_id: &Value) -> Option<String> {
    match user_id {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Who joins: the member key, the id with the client's JSON type, and the whole
/// decoded `channel_data` (re-sent in `member_added`).
#[derive(Clone, Debug)]
pub struct Joiner {
    pub key: String,
    pub user_id: Value,
    pub data: Value,
}

struct Member {
    user_id: Value,
    info: Value,
    sockets: Vec<SocketId>,
}

/// A membership change other subscribers must hear about.
#[derive(Debug, PartialEq)]
pub enum Change {
    /// `member_added` with this data (the joiner's channel_data).
    Added(Value),
    /// `member_removed` for this user id.
    Removed(Value),
}

/// One presence channel's members, plus which member each socket joined as, so a
/// join or leave never scans the member list.
#[derive(Default)]
struct Members {
    by_user: IndexMap<String, Member>,
    by_socket: HashMap<SocketId, String>,
}

#[derive(Default)]
pub struct PresenceBook {
    channels: HashMap<usize, HashMap<Arc<str>, Members>>,
}

impl PresenceBook {
    /// Record `socket` joining (as `joiner`, or as a non-member when None). Returns the
    /// changes to announce and the snapshot the joiner receives.
    pub fn join(
        &mut self,
        app: usize,
        channel: &Arc<str>,
        socket: SocketId,
        joiner: Option<Joiner>,
    ) -> (Vec<Change>, String) {
        let mut changes = Vec::new();
        // A re-subscribe under another user id first leaves the old identity.
        let held_as = self.key_of(app, channel, socket);
        if let Some(old) = held_as.filter(|old| joiner.as_ref().map(|j| &j.key) != Some(old)) {
            changes.extend(self.leave(app, channel, socket, &old).map(Change::Removed));
        }
        if let Some(joiner) = joiner {
            let members = self
                .channels
                .entry(app)
                .or_default()
                .entry(channel.clone())
                .or_default();
            members.by_socket.insert(socket, joiner.key.clone());
            match members.by_user.get_mut(&joiner.key) {
                Some(member) => {
                    if !member.sockets.contains(&socket) {
                        member.sockets.push(socket);
                    }
                }
                None => {
                    let info = joiner.data.get("user_info").cloned().unwrap_or(Value::Null);
                    changes.push(Change::Added(joiner.data.clone()));
                    members.by_user.insert(
                        joiner.key,
                        Member {
                            user_id: joiner.user_id,
                            info,
                            sockets: vec![socket],
                        },
                    );
                }
            }
        }
        (changes, self.snapshot(app, channel))
    }

    /// Record `socket` leaving as member `key`; the user id when that was its last socket.
    pub fn leave(
        &mut self,
        app: usize,
        channel: &str,
        socket: SocketId,
        key: &str,
    ) -> Option<Value> {
        let channels = self.channels.get_mut(&app)?;
        let members = channels.get_mut(channel)?;
        let member = members.by_user.get_mut(key)?;
        member.sockets.retain(|s| *s != socket);
        members.by_socket.remove(&socket);
        let removed = if member.sockets.is_empty() {
            // shift_remove keeps first-join order for the others.
            members.by_user.shift_remove(key).map(|m| m.user_id)
        } else {
            None
        };
        if members.by_user.is_empty() {
            channels.remove(channel);
            if channels.is_empty() {
                self.channels.remove(&app);
            }
        }
        removed
    }

    /// `{"presence":{"count":N,"ids":[...],"hash":{...}}}` as JSON text.
    pub fn snapshot(&self, app: usize, channel: &str) -> String {
        let mut ids = Vec::new();
        let mut hash = Map::new();
        for (key, member) in self.members(app, channel) {
            ids.push(member.user_id.clone());
            hash.insert(key.clone(), member.info.clone());
        }
        let mut presence = Map::new();
        presence.insert("count".into(), ids.len().into());
        presence.insert("ids".into(), Value::Array(ids));
        presence.insert("hash".into(), Value::Object(hash));
        let mut root = Map::new();
        root.insert("presence".into(), Value::Object(presence));
        Value::Object(root).to_string()
    }

    /// Members' user ids in join order.
    pub fn user_ids(&self, app: usize, channel: &str) -> Vec<Value> {
        self.members(app, channel)
            .map(|(_, m)| m.user_id.clone())
            .collect()
    }

    /// Every presence channel of the app this shard owns, with its member count.
    pub fn channels_of(&self, app: usize) -> impl Iterator<Item = (&Arc<str>, usize)> {
        self.channels.get(&app).into_iter().flat_map(|m| {
            m.iter()
                .map(|(name, members)| (name, members.by_user.len()))
        })
    }

    /// Total members over all channels this shard owns (leak checks).
    pub fn member_count(&self) -> usize {
        self.channels
            .values()
            .flat_map(|m| m.values())
            .map(|m| m.by_user.len())
            .sum()
    }

    fn channel(&self, app: usize, channel: &str) -> Option<&Members> {
        self.channels.get(&app)?.get(channel)
    }

    fn members(&self, app: usize, channel: &str) -> impl Iterator<Item = (&String, &Member)> {
        self.channel(app, channel)
            .into_iter()
            .flat_map(|m| m.by_user.iter())
    }

    fn key_of(&self, app: usize, channel: &str, socket: SocketId) -> Option<String> {
        self.channel(app, channel)?.by_socket.get(&socket).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn joiner(id: Value, name: &str) -> Joiner {
        let data = json!({"user_id": id, "user_info": {"name": name}});
        Joiner {
            key: user_key(&id).unwrap(),
            user_id: id,
            data,
        }
    }

    #[test]
    fn first_join_and_last_leave_only() {
        let mut book = PresenceBook::default();
        let ch: Arc<str> = Arc::from("presence-room");
        let (s1, s2) = (SocketId::random(0), SocketId::random(1));
        let (changes, snap) = book.join(0, &ch, s1, Some(joiner(json!(7), "Ada")));
        assert_eq!(
            changes,
            vec![Change::Added(
                json!({"user_id": 7, "user_info": {"name": "Ada"}})
            )]
        );
        assert_eq!(
            snap,
            r#"{"presence":{"count":1,"ids":[7],"hash":{"7":{"name":"Ada"}}}}"#
        );
        // Same user as a string on another socket: no event, still one member.
        let (changes, snap) = book.join(0, &ch, s2, Some(joiner(json!("7"), "Other")));
        assert!(changes.is_empty());
        assert_eq!(
            snap,
            r#"{"presence":{"count":1,"ids":[7],"hash":{"7":{"name":"Ada"}}}}"#
        );
        assert_eq!(book.leave(0, &ch, s1, "7"), None);
        assert_eq!(book.leave(0, &ch, s2, "7"), Some(json!(7)));
        assert_eq!(book.member_count(), 0);
        assert_eq!(
            book.snapshot(0, &ch),
            r#"{"presence":{"count":0,"ids":[],"hash":{}}}"#
        );
    }

    #[test]
    fn non_members_and_missing_info() {
        let mut book = PresenceBook::default();
        let ch: Arc<str> = Arc::from("presence-room");
        let (changes, snap) = book.join(0, &ch, SocketId::random(0), None);
        assert!(changes.is_empty());
        assert_eq!(snap, r#"{"presence":{"count":0,"ids":[],"hash":{}}}"#);
        let j = Joiner {
            key: "u".into(),
            user_id: json!("u"),
            data: json!({"user_id": "u"}),
        };
        let (_, snap) = book.join(0, &ch, SocketId::random(0), Some(j));
        assert_eq!(
            snap,
            r#"{"presence":{"count":1,"ids":["u"],"hash":{"u":null}}}"#
        );
    }

    #[test]
    fn resubscribe_under_another_id_leaves_the_old_one() {
        let mut book = PresenceBook::default();
        let ch: Arc<str> = Arc::from("presence-room");
        let s = SocketId::random(0);
        book.join(0, &ch, s, Some(joiner(json!(1), "A")));
        let (changes, _) = book.join(0, &ch, s, Some(joiner(json!(2), "B")));
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0], Change::Removed(json!(1)));
        assert_eq!(book.user_ids(0, &ch), vec![json!(2)]);
    }

    #[test]
    fn owner_is_stable_and_in_range() {
        for n in 1..8 {
            let o = owner(3, "presence-x", n);
            assert!(o < n);
            assert_eq!(o, owner(3, "presence-x", n));
        }
    }
}
