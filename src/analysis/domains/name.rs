//! What the security features need to know about one query name, computed once per
//! distinct name: its registered domain and public suffix (the Public Suffix List,
//! through the `psl` crate), the shape of its labels, and the Shannon entropy and a
//! hash of its subdomain part.

use std::hash::BuildHasher;
use std::rc::Rc;

/// One name, taken apart.
#[derive(Debug, Clone, PartialEq)]
pub struct NameInfo {
    /// The registered domain (public suffix plus one label): `example.co.uk`; the name
    /// itself when it is a bare suffix or has no known structure.
    pub domain: Rc<str>,
    /// The public suffix: `co.uk`, `s3.amazonaws.com`, `in-addr.arpa`, or the last label
    /// for a name under an unlisted TLD (`test`, `local`).
    pub suffix: Rc<str>,
    /// Length of the name without its trailing dot.
    pub len: u32,
    /// Labels of the name and their summed length (for the mean label length).
    pub labels: u32,
    pub label_chars: u32,
    pub label_max: u32,
    /// Length of the part before the registered domain (`a.b` of `a.b.example.com`),
    /// dots included; 0 when there is none.
    pub subdomain_len: u32,
    /// Shannon entropy of the longest label of the subdomain part, in bits per
    /// character (where encoded data sits: `telemetry` next to a UUID says nothing about
    /// the UUID); None without a subdomain.
    pub subdomain_entropy: Option<f64>,
    /// A hash of the subdomain part, to count distinct subdomains in a bounded set.
    pub subdomain_hash: u32,
    /// A hash of the registered domain, to count distinct domains under a suffix.
    pub domain_hash: u32,
    /// Length of the label left of the suffix (`example` of `example.com`).
    pub sld_len: u32,
}

/// Takes `name` (lower case, fully qualified, as the parser writes it) apart. Names
/// interned elsewhere share their domain strings through `intern`.
pub fn describe(
    name: &str,
    intern: &mut impl FnMut(&str) -> Rc<str>,
    hasher: &impl BuildHasher,
) -> NameInfo {
    let bare = name.strip_suffix('.').unwrap_or(name);
    let (mut labels, mut label_chars, mut label_max) = (0u32, 0u32, 0u32);
    for l in bare.split('.').filter(|l| !l.is_empty()) {
        labels += 1;
        label_chars += l.len() as u32;
        label_max = label_max.max(l.len() as u32);
    }
    let suffix = psl::suffix(bare.as_bytes())
        .map(|s| s.trim().as_bytes())
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or(bare);
    let domain = psl::domain(bare.as_bytes())
        .map(|d| d.trim().as_bytes())
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or(bare);
    let sub = bare
        .strip_suffix(domain)
        .map(|s| s.trim_end_matches('.'))
        .unwrap_or("");
    let sld_len = domain
        .strip_suffix(suffix)
        .map(|s| s.trim_end_matches('.').len())
        .unwrap_or(0) as u32;
    NameInfo {
        domain: intern(domain),
        suffix: intern(suffix),
        len: bare.len() as u32,
        labels,
        label_chars,
        label_max,
        subdomain_len: sub.len() as u32,
        subdomain_entropy: sub
            .split('.')
            .max_by_key(|l| l.len())
            .and_then(|l| entropy(l.bytes())),
        subdomain_hash: hasher.hash_one(sub) as u32,
        domain_hash: hasher.hash_one(domain) as u32,
        sld_len,
    }
}

/// Shannon entropy of a byte string in bits per byte; None when empty.
pub fn entropy(bytes: impl Iterator<Item = u8>) -> Option<f64> {
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for b in bytes {
        counts[b as usize] += 1;
        n += 1;
    }
    if n == 0 {
        return None;
    }
    let n = f64::from(n);
    Some(
        counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = f64::from(c) / n;
                -p * p.log2()
            })
            .sum(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str) -> NameInfo {
        describe(
            name,
            &mut |s: &str| Rc::from(s),
            &foldhash::fast::FixedState::default(),
        )
    }

    #[test]
    fn registered_domains_follow_the_public_suffix_list() {
        let i = info("www.bbc.co.uk.");
        assert_eq!((&*i.domain, &*i.suffix), ("bbc.co.uk", "co.uk"));
        assert_eq!(i.subdomain_len, 3);
        assert_eq!(i.sld_len, 3);
        // Private suffixes: every bucket and distribution is its own domain.
        let b = info("my-bucket.s3.amazonaws.com.");
        assert_eq!(&*b.domain, "my-bucket.s3.amazonaws.com");
        assert_eq!(b.subdomain_len, 0);
        assert!(b.subdomain_entropy.is_none());
        let r = info("4.3.2.10.in-addr.arpa.");
        assert_eq!(&*r.suffix, "in-addr.arpa");
        // An unlisted TLD is its own suffix (the list's default rule).
        let t = info("abc.exfil.test.");
        assert_eq!((&*t.domain, &*t.suffix), ("exfil.test", "test"));
        let k = info("api.github.com.default.svc.cluster.local.");
        assert_eq!(&*k.domain, "cluster.local");
        assert_eq!((k.labels, k.label_max, k.len), (7, 7, 40));
    }

    #[test]
    fn entropy_is_per_character_and_grows_with_the_alphabet() {
        assert_eq!(entropy("aaaa".bytes()), Some(0.0));
        assert_eq!(entropy("abab".bytes()), Some(1.0));
        assert_eq!(entropy("".bytes()), None);
        let hex = info("0123456789abcdef0123456789abcdef.x.example.com.");
        assert!((hex.subdomain_entropy.unwrap() - 4.0).abs() < 0.1);
        let www = info("www.example.com.");
        assert!(www.subdomain_entropy.unwrap() < 0.1);
        assert_ne!(
            info("a.example.com.").subdomain_hash,
            info("b.example.com.").subdomain_hash
        );
    }
}
