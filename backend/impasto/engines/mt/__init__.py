"""MT engine: Multimodal Transfer (Wang, Oxholm, Zhang, Wang, CVPR 2017), a hierarchical feed-forward stylization net.

Modules: ``blocks`` (conv, residual, resize-conv), ``style_subnet``, ``enhance_subnet``, ``refine_subnet``,
``network`` (the three levels), ``train`` (hierarchical training), ``model_file`` (safetensors style files),
``styles`` (shipped and user styles), ``engine`` (inference entry point used by ``impasto.engines.stylize``).
"""
