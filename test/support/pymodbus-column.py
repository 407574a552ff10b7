"""An AC100-like alarm column served by Debian's python3-pymodbus (3.0) on a PTY's device end: a Modbus RTU
slave we did not write. Prints one JSON line per write it accepted; stdin `set di ADDRESS 0|1` moves an input.
Like the AC100, a 1 written to coil 0 resets the latched button (discrete input 0 reads 0 again)."""
import asyncio
import json
import sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server import StartAsyncSerialServer
from pymodbus.transaction import ModbusRtuFramer

SIZE = 17
discrete = ModbusSequentialDataBlock(0, [0] * SIZE)


class Told(ModbusSequentialDataBlock):
    def __init__(self, table):
        super().__init__(0, [0] * SIZE)
        self.table = table

    def setValues(self, address, values):
        super().setValues(address, values)
        # Without zero_mode the store is addressed from 1: block address 1 is Modbus address 0.
        for i, value in enumerate(values):
            print(json.dumps({"table": self.table, "address": address - 1 + i, "value": int(value)}), flush=True)
            if self.table == "coils" and address - 1 + i == 0 and value:
                discrete.setValues(1, [0])


async def read_commands():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        words = line.decode().split()
        if len(words) == 4 and words[:2] == ["set", "di"]:
            discrete.setValues(int(words[2]) + 1, [int(words[3])])


async def main():
    path, unit = sys.argv[1], int(sys.argv[2])
    discrete.setValues(2, [1])  # tamper loop closed: the door is shut
    store = ModbusSlaveContext(di=discrete, co=Told("coils"), hr=Told("holding-registers"), ir=ModbusSequentialDataBlock(0, [0] * SIZE), zero_mode=False)
    context = ModbusServerContext(slaves={unit: store}, single=False)
    asyncio.create_task(read_commands())
    print(json.dumps({"ready": True}), flush=True)
    await StartAsyncSerialServer(context=context, framer=ModbusRtuFramer, port=path, baudrate=9600, timeout=0.005)


asyncio.run(main())
