// The lab: turns one Linux host into several "nodes" carrying "pods", each a real network
// namespace, so the mesh captures and secures real kernel traffic as it would between machines.
