"""Flatbuffer surgery on a converted int8 loop model: keep the tensor carried by each WHILE loop in int8.

Why: TFLiteConverter leaves WHILE's loop variables in float32 (DEQUANTIZE before the loop, QUANTIZE at the top of
the body, DEQUANTIZE at its end, QUANTIZE after the loop). A float carry costs 4 bytes per element in each of
several live buffers of the TFLite Micro arena. Re-typing the carry to int8 (over the body's entry and output
ranges) turns every one of those conversions into an int8 -> int8 requantize (or removes it) and shrinks the
arena; the arithmetic inside the body is unchanged, but the carry adds a rounding per iteration. No converter
option does this, hence this module. A streaming step model also gets its caches' quantization shared in and out,
its identity requantizes dropped, and its caches turned into resource variables it keeps (caches_as_variables).
"""

from __future__ import annotations

import copy

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from asr.export.flatbuffer import pack

_OP = schema.BuiltinOperator
# A streaming step model's caches: its inputs and outputs 1..3 as converted, then the resource variables it keeps.
STREAM_CACHES = ("keys", "values", "conv")
MAX_CARRY_STEP_RATIO = 1.25  # the int8 carry may be at most this much coarser than the body's entry quantization


def _code(model: schema.ModelT, op: schema.OperatorT) -> int:
    oc = model.operatorCodes[op.opcodeIndex]
    return max(oc.builtinCode, oc.deprecatedBuiltinCode)


def _add_opcode(model: schema.ModelT, builtin: int, version: int = 1) -> int:
    """Index of `builtin`'s opcode, added if the model has none (codes above 127 also name the placeholder)."""
    for i, oc in enumerate(model.operatorCodes):
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == builtin:
            oc.version = max(oc.version, version)
            return i
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.version = builtin, min(builtin, 127), version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _consumers(graph: schema.SubGraphT, tensor: int) -> list[schema.OperatorT]:
    return [op for op in graph.operators if tensor in list(op.inputs)]


def _producer(graph: schema.SubGraphT, tensor: int) -> schema.OperatorT | None:
    return next((op for op in graph.operators if tensor in list(op.outputs)), None)


def _retype(tensor: schema.TensorT, quant: schema.QuantizationParametersT) -> None:
    tensor.type = schema.TensorType.INT8
    tensor.quantization = copy.deepcopy(quant)


def _make_requantize(model: schema.ModelT, op: schema.OperatorT) -> None:
    """A (DE)QUANTIZE op whose input and output are now both int8 becomes an int8 -> int8 QUANTIZE."""
    op.opcodeIndex = _add_opcode(model, _OP.QUANTIZE)
    op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.NONE, None


def int8_loop_carry(tflite: bytes) -> tuple[bytes, int]:
    """Return (rewritten model, number of loop variables re-typed from float32 to int8).

    A float32 loop variable is re-typed when the converter's usual pattern surrounds it: QUANTIZE at the body's
    entry, DEQUANTIZE at its exit, a DEQUANTIZE or another such loop before it, QUANTIZE ops or other such loops
    after it. Anything else is left in float32 (still correct, only larger).
    """
    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    changed = 0
    for graph in list(model.subgraphs):
        loops = [op for op in graph.operators if _code(model, op) == _OP.WHILE]
        carries = {
            (id(loop), j)
            for loop in loops
            for j, outer in enumerate(loop.inputs)
            if graph.tensors[outer].type == schema.TensorType.FLOAT32 and _local_pattern(model, graph, loop, j)
        }
        # A loop variable handed from one loop to the next is re-typed only if both sides are.
        while True:
            keep = {c for c in carries if _neighbours(model, graph, loops, c) <= carries}
            if keep == carries:
                break
            carries = keep
        for loop in loops:  # in graph order: a loop's predecessor is re-typed before it
            for j in range(len(loop.inputs)):
                if (id(loop), j) in carries:
                    _retype_carry(model, graph, loop, j)
                    changed += 1
    return pack(model, len(tflite)), changed


def _subgraphs(model, loop) -> tuple[schema.SubGraphT, schema.SubGraphT]:
    return model.subgraphs[loop.builtinOptions.condSubgraphIndex], model.subgraphs[
        loop.builtinOptions.bodySubgraphIndex
    ]


def _local_pattern(model, graph, loop, j: int) -> bool:
    cond, body = _subgraphs(model, loop)
    entry = _consumers(body, body.inputs[j])
    exit_op = _producer(body, body.outputs[j])
    before = _producer(graph, loop.inputs[j])
    return (
        len(entry) == 1
        and _code(model, entry[0]) == _OP.QUANTIZE
        and exit_op is not None
        and _code(model, exit_op) == _OP.DEQUANTIZE
        and _carry_keeps_precision(
            body.tensors[entry[0].outputs[0]].quantization, body.tensors[exit_op.inputs[0]].quantization
        )
        and before is not None
        and _code(model, before) in (_OP.DEQUANTIZE, _OP.WHILE)
        and all(_code(model, op) in (_OP.QUANTIZE, _OP.WHILE) for op in _consumers(graph, loop.outputs[j]))
        and not _consumers(cond, cond.inputs[j])
    )


def _neighbours(model, graph, loops, carry) -> set:
    """The (loop, position) pairs that hand this loop variable in or take it over."""
    loop = next(op for op in loops if id(op) == carry[0])
    j = carry[1]
    out = set()
    before = _producer(graph, loop.inputs[j])
    if _code(model, before) == _OP.WHILE:
        out.add((id(before), list(before.outputs).index(loop.inputs[j])))
    for op in _consumers(graph, loop.outputs[j]):
        if _code(model, op) == _OP.WHILE:
            out.add((id(op), list(op.inputs).index(loop.outputs[j])))
    return out


def _union(a: schema.QuantizationParametersT, b: schema.QuantizationParametersT) -> schema.QuantizationParametersT:
    """int8 per-tensor quantization covering the real ranges of both `a` and `b` (and zero)."""
    lo = min((-128 - a.zeroPoint[0]) * a.scale[0], (-128 - b.zeroPoint[0]) * b.scale[0], 0.0)
    hi = max((127 - a.zeroPoint[0]) * a.scale[0], (127 - b.zeroPoint[0]) * b.scale[0], 0.0)
    out = copy.deepcopy(a)
    out.scale = np.array([(hi - lo) / 255.0], dtype=np.float32)
    out.zeroPoint = np.array([int(round(-128 - lo / out.scale[0]))], dtype=np.int64)
    return out


def _carry_keeps_precision(entry: schema.QuantizationParametersT, exit_: schema.QuantizationParametersT) -> bool:
    """Whether an int8 carry over both ranges keeps (nearly) the body's own entry step.

    A loop whose output is much wider than its input (a first iteration run on its own, fed by the narrow
    subsampling output) would lose its input's precision to the carry: such a loop keeps the float32 carry.
    """
    return _union(entry, exit_).scale[0] <= MAX_CARRY_STEP_RATIO * entry.scale[0]


def _same(a: schema.QuantizationParametersT, b: schema.QuantizationParametersT) -> bool:
    return a.scale[0] == b.scale[0] and a.zeroPoint[0] == b.zeroPoint[0]


def _retype_carry(model, graph, loop, j: int) -> None:
    """Carry the variable in int8 over the union of the body's entry range and its output range.

    The entry range alone is not enough: it covers the inputs of every iteration but not the last one's output
    (and a one-iteration loop's output not at all).
    """
    cond, body = _subgraphs(model, loop)
    body_in, body_out = body.inputs[j], body.outputs[j]
    entry = _consumers(body, body_in)[0]
    exit_op = _producer(body, body_out)
    entry_q = body.tensors[entry.outputs[0]].quantization
    quant = _union(entry_q, body.tensors[exit_op.inputs[0]].quantization)
    if _same(quant, entry_q):  # the carry arrives at the entry scale: the entry QUANTIZE goes away
        for op in body.operators:
            op.inputs = np.where(op.inputs == entry.outputs[0], body_in, op.inputs).astype(np.int32)
        body.operators.remove(entry)
    _retype(body.tensors[body_in], quant)
    _retype(body.tensors[body_out], quant)
    _make_requantize(model, exit_op)  # the block's output scale -> the carry scale
    _retype(cond.tensors[cond.inputs[j]], quant)
    before = _producer(graph, loop.inputs[j])
    if _code(model, before) == _OP.WHILE:  # the previous loop hands over int8 at its own scale: requantize
        handed = copy.deepcopy(graph.tensors[loop.inputs[j]])
        handed.name = (handed.name or b"") + b"/requantized"
        graph.tensors.append(handed)
        requantize = schema.OperatorT()
        requantize.inputs = np.array([loop.inputs[j]], dtype=np.int32)
        requantize.outputs = np.array([len(graph.tensors) - 1], dtype=np.int32)
        _make_requantize(model, requantize)
        graph.operators.insert(graph.operators.index(loop), requantize)
        loop.inputs[j] = len(graph.tensors) - 1
    else:
        _make_requantize(model, before)
    for outer in (loop.inputs[j], loop.outputs[j]):
        _retype(graph.tensors[outer], quant)


def drop_identity_requantize(tflite: bytes) -> tuple[bytes, int]:
    """Return (rewritten model, QUANTIZE ops removed): every int8 -> int8 QUANTIZE whose input and output have one
    zero point and scales within SAME_SCALE_RTOL, its consumers (and the subgraph outputs) rewired to its input.

    Why: the converter and the int8 carry leave such requantizes around loop variables (a streaming model's caches:
    thousands of elements per step), and TFLite Micro computes each element's fixed-point multiply even at scale 1
    (no copy path). Exact: x * (1 + e) rounds to x for |x| <= 255 while 255 * e < 0.5."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    dropped = 0
    for graph in model.subgraphs:
        for op in [op for op in graph.operators if _code(model, op) == _OP.QUANTIZE]:
            src, dst = int(op.inputs[0]), int(op.outputs[0])
            a, b = graph.tensors[src], graph.tensors[dst]
            int8 = a.type == b.type == schema.TensorType.INT8
            if not int8 or a.quantization is None or b.quantization is None or not _same_within(a, b):
                continue
            if dst in list(graph.outputs) and src in list(graph.inputs):
                continue  # a pass-through would make one tensor both; keep the copy
            for other in graph.operators:
                other.inputs = np.where(other.inputs == dst, src, other.inputs).astype(np.int32)
            graph.outputs = np.where(np.asarray(graph.outputs) == dst, src, graph.outputs).astype(np.int32)
            graph.operators.remove(op)
            dropped += 1
    return pack(model, len(tflite)), dropped


SAME_SCALE_RTOL = 1e-5


def _same_within(a: schema.TensorT, b: schema.TensorT) -> bool:
    qa, qb = a.quantization, b.quantization
    if len(qa.scale) != 1 or len(qb.scale) != 1 or qa.zeroPoint[0] != qb.zeroPoint[0]:
        return False
    return abs(qa.scale[0] / qb.scale[0] - 1) <= SAME_SCALE_RTOL


def share_cache_quantization(tflite: bytes, caches: int) -> bytes:
    """A streaming step model's caches (inputs and outputs 1..`caches`) take the int8 quantization of the loop
    variable that carries them, in and out: the requantizes between them and the loop become identities
    (drop_identity_requantize removes them), so each cache flows straight into the loop and out of it, one
    variable for caches_as_variables.

    Why: the converter calibrates a model's inputs and outputs apart, so a cache could come out at another scale than
    it goes in (it did on one of two trained models)."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    graph = model.subgraphs[0]
    loop = next(op for op in graph.operators if _code(model, op) == _OP.WHILE)

    def through_quantize(tensor: int, forward: bool) -> int:
        """The loop variable a model input flows into (forward), or a model output flows from."""
        if forward:
            ops = _consumers(graph, tensor)
            op = ops[0] if len(ops) == 1 else None
            return int(op.outputs[0]) if op is not None and _code(model, op) == _OP.QUANTIZE else tensor
        op = _producer(graph, tensor)
        return int(op.inputs[0]) if op is not None and _code(model, op) == _OP.QUANTIZE else tensor

    for i in range(1, 1 + caches):
        into, out_of = through_quantize(int(graph.inputs[i]), True), through_quantize(int(graph.outputs[i]), False)
        if into not in list(loop.inputs) or out_of not in list(loop.outputs):
            raise ValueError(f"cache {i} does not flow through the loop as a loop variable")
        carry = graph.tensors[into]
        if carry.type != schema.TensorType.INT8 or carry.quantization is None:
            raise ValueError(f"cache {i} is not carried in int8")
        for tensor in (graph.inputs[i], graph.outputs[i]):
            graph.tensors[tensor].quantization = copy.deepcopy(carry.quantization)
    return pack(model, len(tflite))


def _op(model, builtin: int, inputs: list[int], outputs: list[int], options=None, options_type: int = 0, version=1):
    op = schema.OperatorT()
    op.opcodeIndex = _add_opcode(model, builtin, version)
    op.inputs, op.outputs = np.array(inputs, np.int32), np.array(outputs, np.int32)
    op.builtinOptionsType, op.builtinOptions = options_type, options
    return op


def _tensor(model, graph, name: str, type_: int, shape: list[int], data: bytes | None = None, quant=None) -> int:
    tensor = schema.TensorT()
    tensor.name, tensor.type, tensor.shape = name.encode(), type_, np.array(shape, np.int32)
    tensor.quantization = copy.deepcopy(quant)
    tensor.buffer = 0  # the empty buffer: computed at run time
    if data is not None:
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(data, np.uint8)
        model.buffers.append(buffer)
        tensor.buffer = len(model.buffers) - 1
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _var_handle(model, graph, name: str) -> tuple[schema.OperatorT, int]:
    options = schema.VarHandleOptionsT()
    options.container, options.sharedName = "", name
    handle = _tensor(model, graph, f"{name}/handle", schema.TensorType.RESOURCE, [])
    return _op(model, _OP.VAR_HANDLE, [], [handle], options, schema.BuiltinOptions.VarHandleOptions), handle


def _drop_unused_tensors(graph: schema.SubGraphT) -> None:
    """Remove the tensors no op, input or output names, renumbering the rest."""
    used = {int(t) for op in graph.operators for t in [*op.inputs, *op.outputs] if t >= 0}
    used |= {int(t) for t in [*graph.inputs, *graph.outputs]}
    order = sorted(used)
    new = {old: i for i, old in enumerate(order)}
    renumber = np.vectorize(lambda t: new.get(int(t), -1), otypes=[np.int32])
    for op in graph.operators:
        op.inputs, op.outputs = renumber(op.inputs), renumber(op.outputs)
    graph.inputs, graph.outputs = renumber(graph.inputs), renumber(graph.outputs)
    graph.tensors = [graph.tensors[i] for i in order]


def caches_as_variables(tflite: bytes, names: tuple[str, ...]) -> bytes:
    """A streaming step model whose caches (inputs and outputs 1..len(names)) are loop variables of its WHILE
    loops -> the same model keeping them itself, as resource variables named `names`: each loop body reads a cache
    (READ_VARIABLE) just before its first use and assigns the moved-on cache (ASSIGN_VARIABLE) just after it is
    made; the model's only input is the features and its only output the logits. A CALL_ONCE subgraph fills each
    variable with its zero point on the first invoke (TFLite wants a variable assigned before it is read; TFLite
    Micro starts every variable at its zero point and resets it there).

    Why: TFLite Micro's WHILE keeps every loop variable in five buffers (the op's inputs and outputs, the condition's
    and the body's inputs, the body's outputs), 74 KB of arena for 14.8 KB of caches at d_model 64, and the app kept
    a sixth copy between steps; a variable is one buffer. The converter's own resource variables stay float32 (a
    QUANTIZE after each read, a DEQUANTIZE before each assign), hence this surgery on the int8 model."""
    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    main = model.subgraphs[0]
    count = len(names)
    if len(main.inputs) != 1 + count or len(main.outputs) != 1 + count:
        raise ValueError(f"a streaming step model has 1 + {count} inputs and outputs")
    carried = {int(main.inputs[1 + i]): name for i, name in enumerate(names)}  # tensor -> the cache it holds
    leaving = {int(main.outputs[1 + i]): name for i, name in enumerate(names)}
    for loop in [op for op in main.operators if _code(model, op) == _OP.WHILE]:
        positions = [j for j, t in enumerate(loop.inputs) if int(t) in carried]
        cond = model.subgraphs[loop.builtinOptions.condSubgraphIndex]
        body = model.subgraphs[loop.builtinOptions.bodySubgraphIndex]
        for j in positions:
            name = carried[int(loop.inputs[j])]
            carried[int(loop.outputs[j])] = name
            read_into, assign_from = int(body.inputs[j]), int(body.outputs[j])
            made = _producer(body, assign_from)
            if made is None:
                raise ValueError(f"the loop passes the {name} cache through unchanged")
            before, after = body.tensors[read_into], body.tensors[assign_from]
            if before.type != after.type or (before.type == schema.TensorType.INT8 and not _same_within(before, after)):
                raise ValueError(f"the loop body's {name} cache comes out with another type or scale than it goes in")
            handle_op, handle = _var_handle(model, body, name)
            first_use = min(body.operators.index(op) for op in _consumers(body, read_into))
            read = _op(model, _OP.READ_VARIABLE, [handle], [read_into])
            body.operators[first_use:first_use] = [handle_op, read]
            assign = _op(model, _OP.ASSIGN_VARIABLE, [handle, assign_from], [])
            body.operators.insert(body.operators.index(made) + 1, assign)
        keep = [j for j in range(len(loop.inputs)) if j not in positions]
        loop.inputs, loop.outputs = loop.inputs[keep], loop.outputs[keep]
        for graph, ends in ((cond, ("inputs",)), (body, ("inputs", "outputs"))):
            for end in ends:
                setattr(graph, end, np.asarray(getattr(graph, end))[keep].astype(np.int32))
    if any(carried.get(int(t)) != name for t, name in leaving.items()):
        raise ValueError("a cache output is not what the loops made of that cache")
    _fill_once(model, [main.tensors[int(t)] for t in main.inputs[1:]], names)
    main.inputs, main.outputs = main.inputs[:1], main.outputs[:1]
    for graph in model.subgraphs:
        _drop_unused_tensors(graph)
    return pack(model, len(tflite))


def _fill_once(model: schema.ModelT, caches: list[schema.TensorT], names: tuple[str, ...]) -> None:
    """A subgraph assigning each cache variable its zero point (FILL), run once by a CALL_ONCE first in main."""
    init = schema.SubGraphT()
    init.name, init.tensors, init.operators = b"caches_init", [], []
    init.inputs, init.outputs = np.zeros(0, np.int32), np.zeros(0, np.int32)
    for cache, name in zip(caches, names, strict=True):
        shape = [int(d) for d in cache.shape]
        int8 = cache.type == schema.TensorType.INT8
        zero = np.array(cache.quantization.zeroPoint[0] if int8 else 0, np.int8 if int8 else np.float32)
        dims = _tensor(
            model, init, f"{name}/shape", schema.TensorType.INT32, [len(shape)], np.array(shape, "<i4").tobytes()
        )
        value = _tensor(model, init, f"{name}/zero", cache.type, [], zero.tobytes(), cache.quantization)
        filled = _tensor(model, init, f"{name}/empty", cache.type, shape, None, cache.quantization)
        handle_op, handle = _var_handle(model, init, name)
        init.operators += [
            handle_op,
            _op(
                model,
                _OP.FILL,
                [dims, value],
                [filled],
                schema.FillOptionsT(),
                schema.BuiltinOptions.FillOptions,
                version=3 if int8 else 1,
            ),
            _op(model, _OP.ASSIGN_VARIABLE, [handle, filled], []),
        ]
    model.subgraphs.append(init)
    once = schema.CallOnceOptionsT()
    once.initSubgraphIndex = len(model.subgraphs) - 1
    model.subgraphs[0].operators.insert(
        0, _op(model, _OP.CALL_ONCE, [], [], once, schema.BuiltinOptions.CallOnceOptions)
    )
