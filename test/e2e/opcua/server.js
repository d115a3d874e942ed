// OPC UA test server (node-opcua) for the opcua receiver's end-to-end tests.
//
// Environment:
//   PORT             TCP port (required)
//   PKI_DIR          folder of the server's PKI (its own certificate is created there on first start)
//   CERT_OUT         file the server's certificate (DER) is written to, for the test to trust
//   EXTRA_NAMESPACE  when "1", registers urn:otelcol-iiot:e2e:extra before the test namespace, so the
//                    test namespace gets another index
//   OPCUA_USER, OPCUA_PASSWORD  the one user name login accepted
//
// Endpoints: None/None (anonymous) and Basic256Sha256/SignAndEncrypt (anonymous or user name).
// Nodes, in namespace urn:otelcol-iiot:e2e (string ids), all writable by the test:
//   Temperature (Double 21.5), Level (AnalogItem Double 100, EURange 0..200), Counter (UInt32 1000),
//   Running (Boolean true), Vector (Double[3] 1.5 2.5 3.5), Label (String),
//   Flaky (Double 5; Bad_NoCommunication while FlakyBad is true), FlakyBad (Boolean false)
//
// Events and alarms (Alarms & Conditions service installed: ConditionRefresh, Acknowledge, Confirm):
//   Inverter1 (object s=Inverter1, an event notifier of the Server object, so its events reach
//   subscribers of i=2253) with
//     GridFault (Boolean false, writable): the input of the OffNormalAlarm s=Inverter1.GridFaultAlarm
//       (ConditionName "GridFault", source Inverter1). Writing true activates it (Severity 700,
//       Message "Grid fault: inverter disconnected"), writing false makes it inactive (Severity 100,
//       Message "Grid fault cleared"). It is acknowledged with the standard Acknowledge method.
//       GRID_FAULT_AT_START=1 starts the server with the fault present (the alarm active).
//     Command (String, writable): a line written here is run, the control channel of the tests:
//       "event <severity> <errorCode> <message…>"  raises an InverterEventType (s=InverterEventType, a
//                                                  BaseEventType with an ErrorCode UInt32 property) on
//                                                  Inverter1
//   Each event raised prints "raised <type> severity <n>" on stdout.
//   Event filters may have at most 16 where-clause operands (MaxWhereClauseParameters).
"use strict";

const fs = require("fs");
const path = require("path");
const {
    OPCUAServer,
    OPCUACertificateManager,
    Variant,
    DataType,
    DataValue,
    StatusCodes,
    LocalizedText,
    SecurityPolicy,
    MessageSecurityMode,
    standardUnits,
} = require("node-opcua");

const NS = "urn:otelcol-iiot:e2e";

async function main() {
    const port = parseInt(process.env.PORT || "", 10);
    if (!port) {
        throw new Error("PORT is required");
    }
    const pki = process.env.PKI_DIR || path.join(__dirname, "pki");
    const user = process.env.OPCUA_USER || "operator";
    const password = process.env.OPCUA_PASSWORD || "secret";

    const serverCertificateManager = new OPCUACertificateManager({
        automaticallyAcceptUnknownCertificate: true,
        rootFolder: path.join(pki, "server"),
    });
    await serverCertificateManager.initialize();

    const server = new OPCUAServer({
        port,
        hostname: "127.0.0.1",
        alternateHostname: ["127.0.0.1", "localhost"],
        serverCertificateManager,
        securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256],
        securityModes: [MessageSecurityMode.None, MessageSecurityMode.SignAndEncrypt],
        allowAnonymous: true,
        userManager: {
            isValidUser: (u, p) => u === user && p === password,
        },
        serverInfo: { applicationUri: "urn:otelcol-iiot:e2e:node-opcua", productUri: "urn:otelcol-iiot:e2e" },
        buildInfo: { productName: "otelcol-iiot e2e server", manufacturerName: "otelcol-iiot" },
        // A small limit a test can exceed: an event filter with more where-clause operands is refused
        // (BadEventFilterInvalid), as an embedded server's would be.
        serverCapabilities: { maxWhereClauseParameters: 16 },
    });
    await server.initialize();

    const addressSpace = server.engine.addressSpace;
    if (process.env.EXTRA_NAMESPACE === "1") {
        addressSpace.registerNamespace("urn:otelcol-iiot:e2e:extra");
    }
    const ns = addressSpace.registerNamespace(NS);
    const plant = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: "Plant", nodeId: "s=Plant" });
    const rw = { accessLevel: "CurrentRead | CurrentWrite", userAccessLevel: "CurrentRead | CurrentWrite" };

    const variable = (id, dataType, value, extra = {}) =>
        ns.addVariable({
            componentOf: plant,
            browseName: id,
            nodeId: "s=" + id,
            dataType,
            value: new Variant({ dataType: DataType[dataType], value, ...extra }),
            ...rw,
        });

    variable("Temperature", "Double", 21.5);
    variable("Counter", "UInt32", 1000);
    variable("Running", "Boolean", true);
    variable("Vector", "Double", [1.5, 2.5, 3.5], { arrayType: 1 /* VariantArrayType.Array */ });
    variable("Label", "String", "press-7");
    ns.addAnalogDataItem({
        componentOf: plant,
        browseName: "Level",
        nodeId: "s=Level",
        dataType: "Double",
        engineeringUnitsRange: { low: 0, high: 200 },
        engineeringUnits: standardUnits.centimetre,
        value: new Variant({ dataType: DataType.Double, value: 100 }),
        ...rw,
    });

    const flakyBad = variable("FlakyBad", "Boolean", false);
    let flakyValue = 5;
    const flaky = ns.addVariable({
        componentOf: plant,
        browseName: "Flaky",
        nodeId: "s=Flaky",
        dataType: "Double",
        minimumSamplingInterval: 100,
        ...rw,
        value: {
            timestamped_get: () => {
                if (flakyBad.readValue().value.value === true) {
                    return new DataValue({ statusCode: StatusCodes.BadNoCommunication, sourceTimestamp: new Date() });
                }
                return new DataValue({ value: { dataType: DataType.Double, value: flakyValue }, sourceTimestamp: new Date() });
            },
            timestamped_set: async (dv) => {
                flakyValue = dv.value.value;
                return StatusCodes.Good;
            },
        },
    });
    // Subscribers sample Flaky; a change of FlakyBad shows at the next sample.
    flakyBad.on("value_changed", () => flaky.touchValue());

    addEvents(addressSpace, ns);

    await server.start();
    if (process.env.CERT_OUT) {
        fs.writeFileSync(process.env.CERT_OUT, server.getCertificate());
    }
    console.log(`ready ${server.getEndpointUrl()} namespace ${NS} index ${ns.index}`);

    const stop = async () => {
        await server.shutdown(0);
        process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
}

// addEvents builds Inverter1 with its grid-fault alarm, a plain event type, and the command variable.
function addEvents(addressSpace, ns) {
    addressSpace.installAlarmsAndConditionsService();
    const server = addressSpace.rootFolder.objects.server;
    const inverter = ns.addObject({
        organizedBy: addressSpace.rootFolder.objects,
        browseName: "Inverter1",
        nodeId: "s=Inverter1",
        eventNotifier: 1, // SubscribeToEvents
        eventSourceOf: server,
    });
    const rw = { accessLevel: "CurrentRead | CurrentWrite", userAccessLevel: "CurrentRead | CurrentWrite" };

    const eventType = ns.addEventType({ browseName: "InverterEventType", nodeId: "s=InverterEventType", subtypeOf: "BaseEventType" });
    ns.addVariable({
        propertyOf: eventType,
        browseName: "ErrorCode",
        nodeId: "s=InverterEventType.ErrorCode",
        dataType: "UInt32",
        modellingRule: "Mandatory",
    });

    const gridFault = ns.addVariable({
        componentOf: inverter,
        browseName: "GridFault",
        nodeId: "s=Inverter1.GridFault",
        dataType: "Boolean",
        value: new Variant({ dataType: DataType.Boolean, value: false }),
        ...rw,
    });
    const normal = ns.addVariable({
        componentOf: inverter,
        browseName: "GridFaultNormalState",
        nodeId: "s=Inverter1.GridFaultNormalState",
        dataType: "Boolean",
        value: new Variant({ dataType: DataType.Boolean, value: false }),
    });
    const alarm = ns.instantiateOffNormalAlarm({
        alarmType: "OffNormalAlarmType",
        browseName: "GridFaultAlarm",
        nodeId: "s=Inverter1.GridFaultAlarm",
        componentOf: inverter,
        conditionName: "GridFault",
        conditionSource: inverter,
        inputNode: gridFault,
        normalState: normal,
    });
    alarm.calculateConditionInfo = (stateData, isActive) =>
        isActive
            ? { message: "Grid fault: inverter disconnected", quality: StatusCodes.Good, retain: true, severity: 700 }
            : { message: "Grid fault cleared", quality: StatusCodes.Good, retain: true, severity: 100 };
    // An inactive, acknowledged alarm has nothing left to show: it is no longer retained.
    const afterChange = () => {
        const b = alarm.currentBranch();
        if (!b.getActiveState() && b.getAckedState() && b.getRetain()) {
            b.setRetain(false);
        }
    };
    if (process.env.GRID_FAULT_AT_START === "1") {
        gridFault.setValueFromSource({ dataType: DataType.Boolean, value: true });
    }
    gridFault.on("value_changed", (dv) => {
        setImmediate(afterChange);
        console.log(`raised GridFault active ${dv.value.value}`);
    });

    const command = ns.addVariable({
        componentOf: inverter,
        browseName: "Command",
        nodeId: "s=Inverter1.Command",
        dataType: "String",
        value: new Variant({ dataType: DataType.String, value: "" }),
        ...rw,
    });
    command.on("value_changed", (dv) => {
        const line = String(dv.value.value || "").trim();
        if (!line) {
            return;
        }
        const [verb, ...args] = line.split(/\s+/);
        try {
            if (verb === "event") {
                const severity = parseInt(args[0], 10);
                const code = parseInt(args[1], 10);
                const message = args.slice(2).join(" ");
                inverter.raiseEvent(eventType, {
                    sourceName: { dataType: DataType.String, value: "Inverter1" },
                    sourceNode: { dataType: DataType.NodeId, value: inverter.nodeId },
                    severity: { dataType: DataType.UInt16, value: severity },
                    message: { dataType: DataType.LocalizedText, value: new LocalizedText({ text: message, locale: "en" }) },
                    errorCode: { dataType: DataType.UInt32, value: code },
                });
                console.log(`raised InverterEventType severity ${severity}`);
            } else {
                console.log(`unknown command ${line}`);
            }
        } catch (err) {
            console.log(`command ${line} failed: ${err.stack || err}`);
        }
    });
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
