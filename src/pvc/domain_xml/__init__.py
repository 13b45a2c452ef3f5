"""libvirt domain XML, read, checked, built and edited in one place (lxml only, no libvirt).

* :mod:`~pvc.domain_xml.parse`: untrusted XML from clients, parsed safely and checked
  (what PVC will not run is refused) into a :class:`~pvc.domain_xml.parse.DomainSummary`;
  device fragments for hot-plug.
* :mod:`~pvc.domain_xml.build`: the XML of a simple VM from a spec (the lab's guests).
* :mod:`~pvc.domain_xml.edit`: the changes the CLI makes to a VM's XML (vCPUs, memory,
  network interfaces, disks).
* :mod:`~pvc.domain_xml.bridges`: how PVC names the host bridge of a network.
* :mod:`~pvc.domain_xml.units`: libvirt's memory units.

The hypervisor adapter, the domain library and the CLI all use this package; nothing in it
talks to libvirt or to the cluster.
"""
