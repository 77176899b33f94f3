"""The CCSDS pseudo-randomiser sequence (131.0-B-4 section 10) from its recurrence."""


def pn_reference(nbytes: int) -> bytes:
    """h(x) = x^8 + x^7 + x^5 + x^3 + 1 as a recurrence a[n+8] = a[n+7] ^ a[n+5] ^ a[n+3] ^ a[n],
    first eight bits all ones; bits packed MSB first."""
    a = [1] * 8
    while len(a) < nbytes * 8:
        n = len(a) - 8
        a.append(a[n + 7] ^ a[n + 5] ^ a[n + 3] ^ a[n])
    out = bytearray()
    for i in range(nbytes):
        byte = 0
        for bit in a[i * 8:i * 8 + 8]:
            byte = (byte << 1) | bit
        out.append(byte)
    return bytes(out)
