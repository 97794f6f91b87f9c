//! Presence membership, kept by the channel's owner shard alone (design invariant 7).
//!
//! Members are distinct `user_id`s (compared as strings) in first-join order; each
//! remembers the sockets that hold it, on any shard — and with fleet presence on any
//! node (scaling.md §6) — so `member_added` fires on a user's first join and
//! `member_removed` on the last leave across all shards and nodes.

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
    /// The joiner's whole `channel_data` (told to other nodes).
    data: Value,
    holders: Vec<Holder>,
}

/// A socket holding a membership: one of this node's, or one of another node's
/// (named by that process's instance tag and its socket id as sent).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Holder {
    Local(SocketId),
    Remote(Arc<str>, String),
}

/// A membership held by one of this node's sockets (for telling a new node).
pub struct LocalMember {
    pub app: usize,
    pub channel: Arc<str>,
    pub socket: SocketId,
    pub key: String,
    pub data: Value,
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
    by_holder: HashMap<Holder, String>,
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
        let changes = self.join_holder(app, channel, Holder::Local(socket), joiner);
        (changes, self.snapshot(app, channel))
    }

    /// Record another node's socket joining (fleet presence).
    pub fn join_remote(
        &mut self,
        app: usize,
        channel: &Arc<str>,
        instance: Arc<str>,
        socket: String,
        joiner: Joiner,
    ) -> Vec<Change> {
        self.join_holder(app, channel, Holder::Remote(instance, socket), Some(joiner))
    }

    fn join_holder(
        &mut self,
        app: usize,
        channel: &Arc<str>,
        holder: Holder,
        joiner: Option<Joiner>,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        // A re-subscribe under another user id first leaves the old identity.
        let held_as = self.key_of(app, channel, &holder);
        if let Some(old) = held_as.filter(|old| joiner.as_ref().map(|j| &j.key) != Some(old)) {
            changes.extend(
                self.leave_holder(app, channel, &holder, &old)
                    .map(Change::Removed),
            );
        }
        if let Some(joiner) = joiner {
            let members = self
                .channels
                .entry(app)
                .or_default()
                .entry(channel.clone())
                .or_default();
            members.by_holder.insert(holder.clone(), joiner.key.clone());
            match members.by_user.get_mut(&joiner.key) {
                Some(member) => {
                    if !member.holders.contains(&holder) {
                        member.holders.push(holder);
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
                            data: joiner.data,
                            holders: vec![holder],
                        },
                    );
                }
            }
        }
        changes
    }

    /// Record `socket` leaving as member `key`; the user id when that was its last socket.
    pub fn leave(
        &mut self,
        app: usize,
        channel: &str,
        socket: SocketId,
        key: &str,
    ) -> Option<Value> {
        self.leave_holder(app, channel, &Holder::Local(socket), key)
    }

    /// Another node's socket left; the user id when that was the user's last holder.
    pub fn leave_remote(
        &mut self,
        app: usize,
        channel: &str,
        instance: Arc<str>,
        socket: String,
    ) -> Option<Value> {
        let holder = Holder::Remote(instance, socket);
        let key = self.key_of(app, channel, &holder)?;
        self.leave_holder(app, channel, &holder, &key)
    }

    /// Forget every membership another process held (it left the fleet). Returns the
    /// users that are gone as a result, per channel.
    pub fn drop_instance(&mut self, instance: &str) -> Vec<(usize, Arc<str>, Value)> {
        let mut held = Vec::new();
        for (app, channels) in &self.channels {
            for (channel, members) in channels {
                for (holder, key) in &members.by_holder {
                    if matches!(holder, Holder::Remote(i, _) if &**i == instance) {
                        held.push((*app, channel.clone(), holder.clone(), key.clone()));
                    }
                }
            }
        }
        let mut removed = Vec::new();
        for (app, channel, holder, key) in held {
            if let Some(user_id) = self.leave_holder(app, &channel, &holder, &key) {
                removed.push((app, channel, user_id));
            }
        }
        removed
    }

    /// Every membership held by this node's sockets.
    pub fn local_members(&self) -> Vec<LocalMember> {
        let mut out = Vec::new();
        for (app, channels) in &self.channels {
            for (channel, members) in channels {
                for (holder, key) in &members.by_holder {
                    if let (Holder::Local(socket), Some(member)) =
                        (holder, members.by_user.get(key))
                    {
                        out.push(LocalMember {
                            app: *app,
                            channel: channel.clone(),
                            socket: *socket,
                            key: key.clone(),
                            data: member.data.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    fn leave_holder(
        &mut self,
        app: usize,
        channel: &str,
        holder: &Holder,
        key: &str,
    ) -> Option<Value> {
        let channels = self.channels.get_mut(&app)?;
        let members = channels.get_mut(channel)?;
        let member = members.by_user.get_mut(key)?;
        member.holders.retain(|h| h != holder);
        members.by_holder.remove(holder);
        let removed = if member.holders.is_empty() {
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

    fn key_of(&self, app: usize, channel: &str, holder: &Holder) -> Option<String> {
        self.channel(app, channel)?.by_holder.get(holder).cloned()
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
    fn remote_holders_count_like_local_ones() {
        let mut book = PresenceBook::default();
        let ch: Arc<str> = Arc::from("presence-room");
        let node: Arc<str> = Arc::from("node-b/x1");
        let local = SocketId::random(0);
        // A user first seen on another node is added once...
        let added = book.join_remote(0, &ch, node.clone(), "1.2".into(), joiner(json!(7), "Ada"));
        assert_eq!(added.len(), 1);
        // ...joining here too is not new, and the snapshot lists the user once.
        let (changes, snap) = book.join(0, &ch, local, Some(joiner(json!(7), "Ada")));
        assert!(changes.is_empty());
        assert!(snap.contains(r#""count":1"#), "{snap}");
        // The remote holder leaving keeps the member (still held here).
        assert_eq!(book.leave_remote(0, &ch, node.clone(), "1.2".into()), None);
        assert_eq!(book.user_ids(0, &ch), vec![json!(7)]);
        // Only local holders are re-announced to a new node.
        book.join_remote(0, &ch, node.clone(), "3.4".into(), joiner(json!(8), "Bob"));
        let mine: Vec<_> = book.local_members().iter().map(|m| m.key.clone()).collect();
        assert_eq!(mine, vec!["7".to_string()]);
        // A vanished node takes its members with it.
        assert_eq!(
            book.drop_instance("node-b/x1"),
            vec![(0, ch.clone(), json!(8))]
        );
        assert_eq!(book.user_ids(0, &ch), vec![json!(7)]);
        assert!(book.drop_instance("node-b/x1").is_empty());
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
