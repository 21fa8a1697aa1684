"""Build a small ``.tflite`` model locally (no TensorFlow, no download): tests only.

One FULLY_CONNECTED layer, float32 ``[1, n_in] -> [1, n_out]``, written with
the flatbuffer builders of the ``tflite`` schema package. Enough for the
LiteRT workload's tests to load, resize, invoke and read a real model file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def build_fc_model(path: Path, n_in: int = 8, n_out: int = 4, seed: int = 0) -> Path:
    import flatbuffers
    import tflite

    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((n_out, n_in)).astype(np.float32)
    bias = rng.standard_normal(n_out).astype(np.float32)
    b = flatbuffers.Builder(1024)

    def vector(start, items, prepend):
        start(b, len(items))
        for item in reversed(items):
            prepend(item)
        return b.EndVector()

    def buffer(data: bytes | None) -> int:
        vec = None
        if data is not None:
            b.StartVector(1, len(data), 16)
            for byte in reversed(data):
                b.PrependUint8(byte)
            vec = b.EndVector()
        tflite.BufferStart(b)
        if vec is not None:
            tflite.BufferAddData(b, vec)
        return tflite.BufferEnd(b)

    buffers = [buffer(None), buffer(None), buffer(weights.tobytes()), buffer(bias.tobytes()), buffer(None)]

    def tensor(name: str, shape: list[int], buf: int) -> int:
        n = b.CreateString(name)
        sh = vector(tflite.TensorStartShapeVector, shape, b.PrependInt32)
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, sh)
        tflite.TensorAddType(b, tflite.TensorType.FLOAT32)
        tflite.TensorAddBuffer(b, buf)
        tflite.TensorAddName(b, n)
        return tflite.TensorEnd(b)

    tensors = [tensor("input", [1, n_in], 1), tensor("weights", [n_out, n_in], 2), tensor("bias", [n_out], 3),
               tensor("output", [1, n_out], 4)]
    tflite.FullyConnectedOptionsStart(b)
    tflite.FullyConnectedOptionsAddFusedActivationFunction(b, tflite.ActivationFunctionType.NONE)
    options = tflite.FullyConnectedOptionsEnd(b)
    inputs = vector(tflite.OperatorStartInputsVector, [0, 1, 2], b.PrependInt32)
    outputs = vector(tflite.OperatorStartOutputsVector, [3], b.PrependInt32)
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, 0)
    tflite.OperatorAddInputs(b, inputs)
    tflite.OperatorAddOutputs(b, outputs)
    tflite.OperatorAddBuiltinOptionsType(b, tflite.BuiltinOptions.FullyConnectedOptions)
    tflite.OperatorAddBuiltinOptions(b, options)
    op = tflite.OperatorEnd(b)

    t_vec = vector(tflite.SubGraphStartTensorsVector, tensors, b.PrependUOffsetTRelative)
    in_vec = vector(tflite.SubGraphStartInputsVector, [0], b.PrependInt32)
    out_vec = vector(tflite.SubGraphStartOutputsVector, [3], b.PrependInt32)
    op_vec = vector(tflite.SubGraphStartOperatorsVector, [op], b.PrependUOffsetTRelative)
    name = b.CreateString("main")
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, t_vec)
    tflite.SubGraphAddInputs(b, in_vec)
    tflite.SubGraphAddOutputs(b, out_vec)
    tflite.SubGraphAddOperators(b, op_vec)
    tflite.SubGraphAddName(b, name)
    subgraph = tflite.SubGraphEnd(b)

    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, tflite.BuiltinOperator.FULLY_CONNECTED)
    tflite.OperatorCodeAddBuiltinCode(b, tflite.BuiltinOperator.FULLY_CONNECTED)
    tflite.OperatorCodeAddVersion(b, 1)
    code = tflite.OperatorCodeEnd(b)

    codes = vector(tflite.ModelStartOperatorCodesVector, [code], b.PrependUOffsetTRelative)
    subgraphs = vector(tflite.ModelStartSubgraphsVector, [subgraph], b.PrependUOffsetTRelative)
    buf_vec = vector(tflite.ModelStartBuffersVector, buffers, b.PrependUOffsetTRelative)
    desc = b.CreateString("edgetune test model")
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes)
    tflite.ModelAddSubgraphs(b, subgraphs)
    tflite.ModelAddBuffers(b, buf_vec)
    tflite.ModelAddDescription(b, desc)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    path.write_bytes(bytes(b.Output()))
    np.save(path.with_suffix(".weights.npy"), weights)
    np.save(path.with_suffix(".bias.npy"), bias)
    return path
