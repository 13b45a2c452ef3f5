"""The cloud-init metadata service: EC2-style paths on 169.254.169.254, on the primary."""

#: Where VMs find the service (the primary holds the address on its loopback device).
METADATA_ADDRESS = "169.254.169.254"
METADATA_PORT = 80
METADATA_DEVICE = "lo"
