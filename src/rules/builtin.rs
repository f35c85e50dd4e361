//! The built-in rules, embedded from rules/*.toml so a copied binary works anywhere.

/// (path in the source tree, contents), in catalog order.
pub const FILES: &[(&str, &str)] = &[
    (
        "rules/dns_no_traffic.toml",
        include_str!("../../rules/dns_no_traffic.toml"),
    ),
    (
        "rules/dns_capture_degraded.toml",
        include_str!("../../rules/dns_capture_degraded.toml"),
    ),
    (
        "rules/dns_high_latency.toml",
        include_str!("../../rules/dns_high_latency.toml"),
    ),
    (
        "rules/dns_failure_rate.toml",
        include_str!("../../rules/dns_failure_rate.toml"),
    ),
    (
        "rules/dns_timeouts.toml",
        include_str!("../../rules/dns_timeouts.toml"),
    ),
    (
        "rules/dns_servfail.toml",
        include_str!("../../rules/dns_servfail.toml"),
    ),
    (
        "rules/dns_nxdomain_ratio.toml",
        include_str!("../../rules/dns_nxdomain_ratio.toml"),
    ),
    (
        "rules/dns_conntrack_race.toml",
        include_str!("../../rules/dns_conntrack_race.toml"),
    ),
    (
        "rules/dns_node_udp_drops.toml",
        include_str!("../../rules/dns_node_udp_drops.toml"),
    ),
    (
        "rules/dns_search_path_amplification.toml",
        include_str!("../../rules/dns_search_path_amplification.toml"),
    ),
    (
        "rules/dns_truncation_tcp_fallback.toml",
        include_str!("../../rules/dns_truncation_tcp_fallback.toml"),
    ),
    (
        "rules/dns_process_latency_outlier.toml",
        include_str!("../../rules/dns_process_latency_outlier.toml"),
    ),
    (
        "rules/dns_process_failure_outlier.toml",
        include_str!("../../rules/dns_process_failure_outlier.toml"),
    ),
    (
        "rules/dns_server_latency_outlier.toml",
        include_str!("../../rules/dns_server_latency_outlier.toml"),
    ),
    (
        "rules/dns_server_failure_outlier.toml",
        include_str!("../../rules/dns_server_failure_outlier.toml"),
    ),
    (
        "rules/dns_local_server_latency.toml",
        include_str!("../../rules/dns_local_server_latency.toml"),
    ),
    (
        "rules/dns_local_server_failures.toml",
        include_str!("../../rules/dns_local_server_failures.toml"),
    ),
    (
        "rules/dns_local_server_upstream_failing.toml",
        include_str!("../../rules/dns_local_server_upstream_failing.toml"),
    ),
    (
        "rules/dns_local_server_upstream_slow.toml",
        include_str!("../../rules/dns_local_server_upstream_slow.toml"),
    ),
    (
        "rules/dns_local_server_loop.toml",
        include_str!("../../rules/dns_local_server_loop.toml"),
    ),
    (
        "rules/dns_coredns_forward_unhealthy.toml",
        include_str!("../../rules/dns_coredns_forward_unhealthy.toml"),
    ),
    (
        "rules/dns_coredns_forward_rejects.toml",
        include_str!("../../rules/dns_coredns_forward_rejects.toml"),
    ),
    (
        "rules/dns_coredns_served_stale.toml",
        include_str!("../../rules/dns_coredns_served_stale.toml"),
    ),
    (
        "rules/dns_coredns_panics.toml",
        include_str!("../../rules/dns_coredns_panics.toml"),
    ),
    (
        "rules/dns_coredns_cache_hit_ratio.toml",
        include_str!("../../rules/dns_coredns_cache_hit_ratio.toml"),
    ),
    (
        "rules/dns_coredns_zone_servfail.toml",
        include_str!("../../rules/dns_coredns_zone_servfail.toml"),
    ),
    (
        "rules/dns_nodecache_setup_errors.toml",
        include_str!("../../rules/dns_nodecache_setup_errors.toml"),
    ),
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_rule_file_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/rules");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| format!("rules/{}", e.unwrap().file_name().to_string_lossy()))
            .filter(|n| n.ends_with(".toml"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = super::FILES.iter().map(|(n, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }
}
