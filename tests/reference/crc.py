"""CRC-16 FECF (CCSDS 132.0-B-3 section 4.1.6), bit by bit from the definition."""


def crc16_reference(data: bytes) -> int:
    """Bit by bit, straight from the definition: poly 0x1021, preset 0xFFFF, MSB first."""
    reg = 0xFFFF
    for byte in data:
        for i in range(7, -1, -1):
            bit = (byte >> i) & 1
            top = (reg >> 15) & 1
            reg = (reg << 1) & 0xFFFF
            if top ^ bit:
                reg ^= 0x1021
    return reg
