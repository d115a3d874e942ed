#!/usr/bin/python3
"""A Modbus server for the end-to-end test of the modbus receiver, on Debian's python3-pymodbus.

  server.py --port 5020 [--framer socket|rtu|ascii] [--control DIR]

Unit 1, holding registers (0-based):
  0-1   float32 ABCD  230.5
  2-3   float32 CDAB  -12.25
  4-5   int32   ABCD  -123456
  6     uint16  2345 (the test scales it by 0.1: 234.5)
  7     0x0024 (bit 2 set, bit 3 clear)
  8-9   uint32  counter, +7 every 0.5 s
  10    uint16  77; removed (reads of it raise exception 2) once DIR/fail exists
  11    uint16  42
Discrete input 0 is on. Input register 3 is int16 -321; coils 0-2 are on, off, on.
It prints "ready" once it listens.
"""
import argparse
import asyncio
import logging
import os
import struct
import sys

from pymodbus.datastore import (ModbusServerContext, ModbusSlaveContext,
                                ModbusSparseDataBlock)
from pymodbus.framer.ascii_framer import ModbusAsciiFramer
from pymodbus.framer.rtu_framer import ModbusRtuFramer
from pymodbus.framer.socket_framer import ModbusSocketFramer
from pymodbus.server import StartAsyncTcpServer


def words(fmt, value):
    raw = struct.pack(">" + fmt, value)
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--framer", choices=["socket", "rtu", "ascii"], default="socket")
    ap.add_argument("--control", default="")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)

    f_cdab = words("f", -12.25)
    regs = {0: words("f", 230.5), 2: [f_cdab[1], f_cdab[0]], 4: words("i", -123456),
            6: [2345], 7: [0x0024], 8: words("I", 1000), 10: [77], 11: [42]}
    hr = ModbusSparseDataBlock(regs)
    di = ModbusSparseDataBlock({0: [1]})
    ir = ModbusSparseDataBlock({3: words("h", -321)})
    co = ModbusSparseDataBlock({0: [1, 0, 1]})
    slave = ModbusSlaveContext(hr=hr, di=di, ir=ir, co=co, zero_mode=True)
    context = ModbusServerContext(slaves={1: slave}, single=False)

    async def tick():
        counter = 1000
        while True:
            await asyncio.sleep(0.5)
            counter += 7
            hr.values[8], hr.values[9] = words("I", counter)
            if args.control and os.path.exists(os.path.join(args.control, "fail")):
                hr.values.pop(10, None)

    framer = {"rtu": ModbusRtuFramer, "ascii": ModbusAsciiFramer}.get(args.framer, ModbusSocketFramer)
    server = await StartAsyncTcpServer(context=context, address=("127.0.0.1", args.port),
                                       framer=framer, defer_start=True, allow_reuse_address=True)
    asyncio.get_running_loop().create_task(tick())
    print("ready", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
