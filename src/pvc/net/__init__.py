"""Network adapters: addresses, ARP, and later VXLAN/FRR/dnsmasq/nftables."""
