"""Proofs for the fixer, computed where the analysis knows the facts: what is a torch tensor, what is a
Python int, how long a slice is. ``ast`` only (no libcst, no torch).

The analysis' value kinds (:mod:`..callgraph`) are deliberately generous: a method named ``sum`` makes
a tensor, a caller's argument makes a tensor. That is right for finding hazards and wrong for
rewriting code: ``np.sum(x)`` is not a tensor, and ``index_copy_`` on a NumPy array crashes. A
:class:`~..fixdata.Proof` here is made only of what the source says for certain: a ``torch.*``
allocation, a ``torch.Tensor`` annotation, a method of a proven tensor, an attribute whose every
assignment is one of those, a project function every ``return`` of which is one. What the kinds
believe without proof comes back as ``inferred``.

* :mod:`.scopes`: the nodes and name bindings of one function;
* :mod:`.tensors`: is an expression a torch tensor (:func:`tensor_proof`);
* :mod:`.ints`: Python ints, integer dtypes, slice lengths;
* :mod:`.state`: where an attribute is used across the project, initialisers, owner classes.
"""

from .ints import MAX_LEN_NAMES, int_proof, integer_dtype_proof, slice_length
from .scopes import bindings, scope_nodes
from .state import attribute_uses, init_methods, owner_class
from .tensors import NO, is_self_attr, prover, related_classes, self_assignment, src, tensor_proof

__all__ = ["MAX_LEN_NAMES", "NO", "attribute_uses", "bindings", "init_methods", "int_proof", "integer_dtype_proof",
           "is_self_attr", "owner_class", "prover", "related_classes", "scope_nodes", "self_assignment",
           "slice_length", "src", "tensor_proof"]
