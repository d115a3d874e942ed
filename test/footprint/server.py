#!/usr/bin/python3
"""Modbus/TCP devices for the footprint benchmark, on Debian's python3-pymodbus (3.0).

  server.py --servers N --units U --registers R

Starts N Modbus/TCP servers in one process, each on a free loopback port the OS picks, each answering
unit ids 1..U with R holding and R input registers. Every even register pair holds a float32 (ABCD)
that changes every second, so float32 fields at even addresses read real numbers (never NaN) and the
other types read whatever words are there. Prints "ready PORT ..." once every server listens.
"""
import argparse
import asyncio
import logging
import struct
import sys

from pymodbus.datastore import (ModbusServerContext, ModbusSequentialDataBlock,
                                ModbusSlaveContext)
from pymodbus.server import StartAsyncTcpServer


def float_words(value):
    raw = struct.pack(">f", value)
    return [int.from_bytes(raw[0:2], "big"), int.from_bytes(raw[2:4], "big")]


def fill(block, registers, unit, tick):
    values = []
    for i in range(0, registers, 2):
        values += float_words(100.0 * unit + i + (tick % 60) * 0.25)
    block.setValues(0, values[:registers])


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", type=int, default=1)
    ap.add_argument("--units", type=int, default=1)
    ap.add_argument("--registers", type=int, default=64)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)

    blocks = []
    servers = []
    for _ in range(args.servers):
        slaves = {}
        for unit in range(1, args.units + 1):
            hr = ModbusSequentialDataBlock(0, [0] * args.registers)
            ir = ModbusSequentialDataBlock(0, [0] * args.registers)
            blocks.append((unit, hr, ir))
            slaves[unit] = ModbusSlaveContext(hr=hr, ir=ir, zero_mode=True)
        context = ModbusServerContext(slaves=slaves, single=False)
        servers.append(await StartAsyncTcpServer(context=context, address=("127.0.0.1", 0),
                                                 defer_start=True, allow_reuse_address=True))

    def update(tick):
        for unit, hr, ir in blocks:
            fill(hr, args.registers, unit, tick)
            fill(ir, args.registers, unit + 50, tick)

    async def ticker():
        tick = 0
        while True:
            await asyncio.sleep(1)
            tick += 1
            update(tick)

    update(0)
    tasks = [asyncio.create_task(s.serve_forever()) for s in servers]
    await asyncio.gather(*(s.serving for s in servers))
    ports = [s.server.sockets[0].getsockname()[1] for s in servers]
    asyncio.get_running_loop().create_task(ticker())
    print("ready " + " ".join(str(p) for p in ports), flush=True)
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
