//! Maps a dotted field path (`services.prometheus.cpu`, `security_groups.prom.ingress.0.cidr`)
//! to the line and column where it stands in the stack file, for errors found after parsing.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::fmt;

/// Line/column of every node of the document, by path.
#[derive(Debug, Clone, Default)]
pub struct Locator {
    positions: BTreeMap<String, (usize, usize)>,
}

impl Locator {
    pub fn new(text: &str) -> Result<Locator, serde_saphyr::Error> {
        let mut positions = BTreeMap::new();
        if text.trim().is_empty() {
            return Ok(Locator { positions });
        }
        let root: Spanned<Node> = serde_saphyr::from_str(text)?;
        walk(&root, String::new(), &mut positions);
        Ok(Locator { positions })
    }

    /// The position of `path`, or of its nearest ancestor that exists (a missing field is
    /// reported where its parent is). `(1, 1)` for the document itself.
    pub fn locate(&self, path: &str) -> (usize, usize) {
        let mut p = path.to_string();
        loop {
            if let Some(pos) = self.positions.get(&p) {
                return *pos;
            }
            match p.rfind('.') {
                Some(i) => p.truncate(i),
                None => return self.positions.get("").copied().unwrap_or((1, 1)),
            }
        }
    }
}

fn walk(node: &Spanned<Node>, path: String, out: &mut BTreeMap<String, (usize, usize)>) {
    out.insert(
        path.clone(),
        (
            node.referenced.line() as usize,
            node.referenced.column() as usize,
        ),
    );
    let child = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match &node.value {
        Node::Map(entries) => {
            for (k, v) in entries {
                walk(v, child(k), out);
            }
        }
        Node::Seq(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, child(&i.to_string()), out);
            }
        }
        Node::Scalar => {}
    }
}

/// The shape of a YAML document, with no values kept: only where things are.
#[derive(Debug)]
enum Node {
    Map(Vec<(String, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Scalar,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Key>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key.0, value));
        }
        Ok(Node::Map(entries))
    }
}

/// A mapping key of any scalar type, as text.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
                Ok(Key("null".into()))
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_nested_keys_and_list_items() {
        let text = "a: 1\nb:\n  c: x\n  d:\n    - p: 1\n    - p: 2\n";
        let loc = Locator::new(text).unwrap();
        assert_eq!(loc.locate("a").0, 1);
        assert_eq!(loc.locate("b.c").0, 3);
        assert_eq!(loc.locate("b.d.1.p").0, 6);
        // A missing child is reported at its parent.
        assert_eq!(loc.locate("b.c.nope").0, 3);
    }
}
