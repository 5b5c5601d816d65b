"""Real architectures, written from their well-known public definitions at small sizes, imported with
verify.from_torch, compared with PyTorch's float64 value and gradient (with respect to every input and every
parameter) at random points, and audited.

LeNet-5; the pytorch/examples MNIST ``Net`` (conv 1->32, conv 32->64, relu, max_pool2d 2, dropout, fc, fc,
log_softmax: the same layers with fewer channels and a smaller image); ResNet basic blocks with BatchNorm in
eval and train mode; a nanoGPT-style decoder block (token and position embeddings, causal attention with
masked_fill(-inf), layer norm, GELU, residuals, next-token cross-entropy); nn.TransformerEncoderLayer; LSTM
and GRU cells over a few steps.  The comparisons hold to float64 rounding (tests/import_helpers.py states the
bound; these models stay within its sizes).  Skipped when torch is not installed.
"""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import verify  # noqa: E402
from import_helpers import close  # noqa: E402

D = torch.float64


class LeNet5(nn.Module):
    """LeCun et al. (1998): conv 5x5 (6) - pool - conv 5x5 (16) - pool - fc 120 - fc 84 - fc 10 (ReLU and max-pool,
    as most modern versions), on a 1x16x16 image here (the original has 32x32)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5, padding=2, dtype=D)
        self.c3 = nn.Conv2d(6, 16, 5, dtype=D)
        self.f5 = nn.Linear(16 * 2 * 2, 120, dtype=D)
        self.f6 = nn.Linear(120, 84, dtype=D)
        self.f7 = nn.Linear(84, 10, dtype=D)

    def forward(self, x, y):
        h = F.max_pool2d(F.relu(self.c1(x)), 2)
        h = F.max_pool2d(F.relu(self.c3(h)), 2)
        h = F.relu(self.f5(h.flatten(1)))
        h = F.relu(self.f6(h))
        return F.cross_entropy(self.f7(h), y)


class MnistNet(nn.Module):
    """The pytorch/examples MNIST Net (conv1 1->32 3x3, conv2 32->64 3x3, relu, max_pool2d 2, dropout 0.25, fc1,
    relu, dropout 0.5, fc2 -> 10, log_softmax, nll_loss) with 4 and 8 channels on a 10x10 image."""

    def __init__(self, c1=4, c2=8, side=10, hidden=16):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 3, 1, dtype=D)
        self.conv2 = nn.Conv2d(c1, c2, 3, 1, dtype=D)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        flat = c2 * ((side - 4) // 2) ** 2
        self.fc1 = nn.Linear(flat, hidden, dtype=D)
        self.fc2 = nn.Linear(hidden, 10, dtype=D)

    def forward(self, x, y):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.nll_loss(F.log_softmax(self.fc2(x), dim=1), y)


class BasicBlock(nn.Module):
    """He et al. (2016), torchvision's BasicBlock: conv3x3-BN-ReLU-conv3x3-BN, a 1x1 conv-BN shortcut when the
    shape changes, ReLU after the sum."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False, dtype=D)
        self.bn1 = nn.BatchNorm2d(cout, dtype=D)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False, dtype=D)
        self.bn2 = nn.BatchNorm2d(cout, dtype=D)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False, dtype=D),
                                      nn.BatchNorm2d(cout, dtype=D))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.down is None else self.down(x)))


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1, bias=False, dtype=D)
        self.block1 = BasicBlock(4, 4)
        self.block2 = BasicBlock(4, 6, stride=2)
        self.fc = nn.Linear(6, 3, dtype=D)

    def forward(self, x, y):
        h = self.block2(self.block1(F.relu(self.stem(x))))
        return F.cross_entropy(self.fc(F.adaptive_avg_pool2d(h, 1).flatten(1)), y)


class CausalSelfAttention(nn.Module):
    """nanoGPT's attention (Karpathy): one linear for q, k, v, heads, scores masked with a lower-triangular buffer
    (masked_fill(-inf)), softmax, projection."""

    def __init__(self, d, heads, block):
        super().__init__()
        self.c_attn = nn.Linear(d, 3 * d, dtype=D)
        self.c_proj = nn.Linear(d, d, dtype=D)
        self.h = heads
        self.register_buffer("bias", torch.tril(torch.ones(block, block)).view(1, 1, block, block))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        k = k.view(B, T, self.h, C // self.h).transpose(1, 2)
        q = q.view(B, T, self.h, C // self.h).transpose(1, 2)
        v = v.view(B, T, self.h, C // self.h).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class GPTBlock(nn.Module):
    """A nanoGPT model with one block: token and position embeddings, pre-norm attention and MLP (GELU) with
    residuals, final layer norm, the head tied to nothing, next-token cross-entropy."""

    def __init__(self, vocab=11, block=5, d=8, heads=2):
        super().__init__()
        self.wte = nn.Embedding(vocab, d, dtype=D)
        self.wpe = nn.Embedding(block, d, dtype=D)
        self.ln_1 = nn.LayerNorm(d, dtype=D)
        self.attn = CausalSelfAttention(d, heads, block)
        self.ln_2 = nn.LayerNorm(d, dtype=D)
        self.c_fc = nn.Linear(d, 4 * d, dtype=D)
        self.c_proj = nn.Linear(4 * d, d, dtype=D)
        self.ln_f = nn.LayerNorm(d, dtype=D)
        self.lm_head = nn.Linear(d, vocab, bias=False, dtype=D)

    def forward(self, idx, targets):
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long)
        x = self.wte(idx) + self.wpe(pos)
        x = x + self.attn(self.ln_1(x))
        x = x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x))))
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0,
                                                batch_first=True, dtype=D)

    def forward(self, x, w):
        return (self.layer(x) * w).sum()


class RNNs(nn.Module):
    """An LSTM cell and a GRU cell run over a few steps, a linear read-out of both final states."""

    def __init__(self, n_in=3, hidden=4):
        super().__init__()
        self.lstm = nn.LSTMCell(n_in, hidden, dtype=D)
        self.gru = nn.GRUCell(n_in, hidden, dtype=D)
        self.out = nn.Linear(2 * hidden, 1, dtype=D)

    def forward(self, xs):
        h = c = g = torch.zeros(xs.shape[1], self.lstm.hidden_size, dtype=D)
        for t in range(xs.shape[0]):
            h, c = self.lstm(xs[t], (h, c))
            g = self.gru(xs[t], g)
        return self.out(torch.cat([h, g], 1)).pow(2).sum()


def _model(name, train=False):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    if name == "lenet5":
        return LeNet5(), (torch.randn(1, 1, 16, 16, generator=gen, dtype=D), torch.tensor([3]))
    if name == "mnist_net":
        return MnistNet().eval(), (torch.randn(2, 1, 10, 10, generator=gen, dtype=D), torch.tensor([7, 1]))
    if name == "resnet":
        m = TinyResNet()
        for mod in m.modules():         # non-trivial running statistics and affine params
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5, generator=gen)
                mod.running_var.uniform_(0.5, 1.5, generator=gen)
                nn.init.uniform_(mod.weight, 0.5, 1.5)
                nn.init.uniform_(mod.bias, -0.5, 0.5)
        m.train(train)
        return m, (torch.randn(2, 1, 6, 6, generator=gen, dtype=D), torch.tensor([0, 2]))
    if name == "gpt":
        return GPTBlock(), (torch.randint(0, 11, (2, 5), generator=gen), torch.randint(0, 11, (2, 5), generator=gen))
    if name == "encoder":
        m = Encoder().eval()
        return m, (torch.randn(2, 3, 8, generator=gen, dtype=D), torch.randn(2, 3, 8, generator=gen, dtype=D))
    if name == "rnn":
        return RNNs(), (torch.randn(3, 2, 3, generator=gen, dtype=D),)
    raise KeyError(name)


def _torch_grads(model, args, imp):
    """torch's value and gradient with respect to every program input (parameters first, then float inputs)."""
    named = dict(model.named_parameters())
    targs = [a.detach().clone().requires_grad_(a.is_floating_point()) for a in args]
    users = iter(a for a in targs if a.is_floating_point())
    leaves = [named[i.source] if i.kind == "parameter" else next(users) for i in imp.inputs]
    out = model(*targs)
    grads = torch.autograd.grad(out, leaves, allow_unused=True)
    return out.item(), [np.zeros(tuple(lf.shape)) if g is None else g.numpy() for lf, g in zip(leaves, grads)]


CASES = [("lenet5", False), ("mnist_net", False), ("resnet", False), ("resnet", True), ("gpt", False),
         ("encoder", False), ("rnn", False)]


@pytest.mark.parametrize("name, train", CASES)
def test_architecture_imports_and_matches_torch(name, train):
    model, args = _model(name, train)
    imp = verify.from_torch(model, *args)
    g = verify.grad(imp.program, imp.point, number="ball")
    value, grads = _torch_grads(model, args, imp)
    close(np.array(g.values[0]), np.array(value), f"{name} value")
    assert len(g.gradient) == len(grads)
    for info, ours, theirs in zip(imp.inputs, g.gradient, grads):
        close(ours, theirs, f"{name} d/d{info.source}")


@pytest.mark.parametrize("name, train", [("lenet5", False), ("mnist_net", False), ("resnet", True), ("gpt", False),
                                         ("encoder", False), ("rnn", False)])
def test_architecture_audits(name, train):
    """The audit runs end to end and proves that torch's float64 gradient is a selection gradient at the point
    (to float64 rounding).  LeNet's and the MNIST net's max-pools see ties among the zeros that ReLU makes: exact
    kinks, where torch's first-element rule is a selection; the smooth-at-random-points models have none."""
    model, args = _model(name, train)
    rep = verify.audit(model, *args, critical="never")
    assert rep.verdict_word == "PROVED", rep.summary()
    assert all(a.agrees for a in rep.agreement), rep.summary()
    if name in ("gpt", "encoder", "rnn"):
        assert not rep.exact_kinks and not rep.float_kinks
