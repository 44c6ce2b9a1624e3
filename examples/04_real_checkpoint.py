# %% [markdown]
# # A real checkpoint
#
# Any StyleGAN2/3 checkpoint loads: NVIDIA's `.pkl` (read by an allow-list unpickler that never runs the code
# inside) or rosinality's `.pt` (read with `weights_only=True`). On a real FFHQ model use a GPU (`DEVICE =
# "cuda"`) and the paper's settings (`PRESET = "paper"`); CI runs this notebook on a tiny test pickle.

# %% tags=["parameters"]
CHECKPOINT = "stylegan2-ffhq-config-f.pkl"
DEVICE = "cpu"
REGION = None        # None: the mouth preset on 1024² FFHQ-aligned faces, else a spec such as rect:x0,y0,x1,y1
SEED = 0
PRESET = None        # "paper": exactly the paper's settings
DISTANCE = None      # None: LPIPS for a checkpoint (AlexNet weights from torchvision's cache), or "l2"
LAYERS = None        # None: the default W+ layers of a 1024² model (2:8); a small model needs fewer, e.g. "1:4"
EPOCHS = None
N_FRAMES = None

# %%
import mgm_analysis as mgm

G = mgm.load_generator(CHECKPOINT, device=DEVICE)
print(G.info)       # format, resolution, W+ size, sha256

# %%
region = REGION or "mouth"
settings = {k: v for k, v in {"epochs": EPOCHS, "n_frames": N_FRAMES, "layers": LAYERS,
                                   "distance": DISTANCE}.items() if v is not None}
run = mgm.discover(region=region, seed=SEED, generator=CHECKPOINT, device=DEVICE, preset=PRESET, **settings)
run

# %%
print(run.verdict())
run.figure()
