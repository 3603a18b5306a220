from . import make_samples

for p in make_samples():
    print(p, p.stat().st_size, "bytes")
