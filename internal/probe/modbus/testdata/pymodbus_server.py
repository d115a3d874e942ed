#!/usr/bin/python3
"""A Modbus/TCP server on Debian's python3-pymodbus for the probe's tests.

  pymodbus_server.py --port 5020 [--ignore-missing] [--framer socket|rtu]

--framer rtu serves RTU frames over TCP (a serial gateway in transparent mode: rtuovertcp://).

Unit 1 (a meter with its values in several encodings), holding registers (0-based):
  100-101 float32 ABCD  230.4   (voltage)
  110-111 float32 CDAB  49.98   (frequency)
  120     uint16        2304    (230.4 V in 0.1 V)
  130-131 int32   ABCD  -15250  (-15.25 kW in W... as 0.001 kW)
  140-141 uint32  CDAB  1234567 (1234.567 kWh in Wh)
Registers outside the sparse block raise exception 2 (illegal data address).
Unit 3 has only input register 0 (holding reads raise exception 2: a device that is there).
Other units: with --ignore-missing the server stays silent (a unit that never answers); without it,
it answers exception 11 (gateway target failed to respond), as a gateway does.
It prints "ready" once it listens.
"""
import argparse
import asyncio
import logging
import struct
import sys

from pymodbus.datastore import (ModbusServerContext, ModbusSlaveContext,
                                ModbusSparseDataBlock)
from pymodbus.framer.rtu_framer import ModbusRtuFramer
from pymodbus.framer.socket_framer import ModbusSocketFramer
from pymodbus.server import StartAsyncTcpServer


def words(fmt, value):
    raw = struct.pack(">" + fmt, value)
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]


def swapped(fmt, value):
    w = words(fmt, value)
    return [w[1], w[0]]


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ignore-missing", action="store_true")
    ap.add_argument("--framer", choices=["socket", "rtu"], default="socket")
    args = ap.parse_args()
    logging.basicConfig(level=logging.CRITICAL)

    regs = {100: words("f", 230.4), 110: swapped("f", 49.98), 120: [2304],
            130: words("i", -15250), 140: swapped("I", 1234567)}
    meter = ModbusSlaveContext(hr=ModbusSparseDataBlock(regs), ir=ModbusSparseDataBlock({0: [1]}), zero_mode=True)
    bare = ModbusSlaveContext(hr=ModbusSparseDataBlock({60000: [0]}), ir=ModbusSparseDataBlock({0: [7]}), zero_mode=True)
    context = ModbusServerContext(slaves={1: meter, 3: bare}, single=False)
    framer = ModbusRtuFramer if args.framer == "rtu" else ModbusSocketFramer
    server = await StartAsyncTcpServer(context=context, address=("127.0.0.1", args.port), defer_start=True, framer=framer,
                                       allow_reuse_address=True, ignore_missing_slaves=args.ignore_missing)
    print("ready", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
