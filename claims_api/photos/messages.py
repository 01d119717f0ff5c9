"""Customer-facing sentences for machine-readable codes, in English and Chinese.

The catalogue is a plain mapping ``locale -> code -> sentence`` of photo rejections and
quality problems. (A claim's reason codes carry their own texts in
:mod:`claims_api.rules.signals`.) Unknown locales fall back to
English, unknown codes to a generic sentence.
"""

from __future__ import annotations

DEFAULT_LOCALE = "en"

CATALOGUE: dict[str, dict[str, str]] = {
    "en": {
        # Upload rejections (claims_api.photos.imaging.PhotoRejected.code)
        "empty_file": "The upload is empty — please choose a photo and try again.",
        "file_too_large": "The photo file is too large — please send a smaller or compressed "
        "photo.",
        "unsupported_format": "This file is not a supported photo — please send a JPEG, PNG, "
        "WebP, HEIC or AVIF photo.",
        "image_too_large": "The photo has too many pixels — please send a smaller photo.",
        "corrupt_image": "The photo could not be read (the file is damaged or incomplete) — "
        "please take it again.",
        # Quality problems (claims_api.photos.quality.Problem.code)
        "too_small": "The photo is too small to check — please send the original photo.",
        "too_dark": "The photo is too dark — please retake it in daylight.",
        "blown_out": "The photo is too bright and washed out — please retake it out of "
        "direct light.",
        "too_flat": "The photo shows almost nothing (no contrast) — please photograph the "
        "item itself.",
        "too_blurry": "The photo is blurry — please hold the phone still and retake it.",
        "unknown": "Something is wrong with this photo — please try again.",
    },
    "zh": {
        "empty_file": "上传的文件是空的，请选择一张照片后重试。",
        "file_too_large": "照片文件太大，请发送较小或压缩后的照片。",
        "unsupported_format": "不支持该文件格式，请发送 JPEG、PNG、WebP、HEIC 或 AVIF 照片。",
        "image_too_large": "照片像素过多，请发送尺寸较小的照片。",
        "corrupt_image": "无法读取照片（文件已损坏或不完整），请重新拍摄。",
        "too_small": "照片太小，无法核查，请发送原图。",
        "too_dark": "照片太暗，请在光线充足的地方重新拍摄。",
        "blown_out": "照片过亮、发白，请避开强光重新拍摄。",
        "too_flat": "照片几乎看不清内容（没有对比度），请对准商品本身拍摄。",
        "too_blurry": "照片模糊，请拿稳手机重新拍摄。",
        "unknown": "这张照片有问题，请重试。",
    },
}


def normalise_locale(locale: str | None) -> str:
    """``"zh-CN"``, ``"zh_Hans"`` -> ``"zh"``; anything unknown -> the default locale."""
    if not locale:
        return DEFAULT_LOCALE
    language = locale.replace("_", "-").split("-", 1)[0].lower()
    return language if language in CATALOGUE else DEFAULT_LOCALE


def message(code: str, locale: str | None = DEFAULT_LOCALE, **params: object) -> str:
    """The sentence for ``code`` in ``locale``; ``params`` fill ``{placeholders}``."""
    chosen = normalise_locale(locale)
    text = (
        CATALOGUE[chosen].get(code)
        or CATALOGUE[DEFAULT_LOCALE].get(code)
        or CATALOGUE[chosen].get("unknown")
        or CATALOGUE[DEFAULT_LOCALE]["unknown"]
    )
    return text.format(**params) if params else text
