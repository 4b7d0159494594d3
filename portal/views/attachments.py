"""Attachments on the web: opening a file (images inline, everything else as a download), the editor's image
upload, and the request size the forms that carry files may reach."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from flask import Blueprint, Flask, Response, current_app, flash, jsonify, request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from ..auth import agent_required, viewer
from ..db import get_session
from ..domain import attachments as attachment_service
from ..domain import knowledge
from ..domain.attachment_store import ObjectStore, stores_for
from ..domain.errors import N_, Invalid, NotFound
from ..domain.file_types import allowed_type, ascii_filename, detect
from ..domain import tickets as ticket_service
from ..domain.models import Article
from ..domain.numbers import parse_id
from ..errors import translated, wants_json

bp = Blueprint("attachments", __name__)
FIELD = "attachments"  # the file field of every form that carries files
# The forms that carry files: only their requests may be as large as the files allow (others keep 2 MB).
UPLOAD_ENDPOINTS = {"help.ask", "tickets.reply", "attachments.editor_upload", "kb.create", "kb.edit"}
# A file opened on its own can run nothing, load nothing and be framed by nothing.
FILE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def settings() -> attachment_service.AttachmentSettings:
    """This app's attachment settings and stores."""
    return current_app.extensions["mesa_attachments"]


def uploads_from_request() -> list[attachment_service.Upload]:
    """The files of the submitted form's file field (a field left empty sends none)."""
    return [attachment_service.Upload(storage.filename or "", storage.read())
            for storage in request.files.getlist(FIELD) if storage and storage.filename]


def content_disposition(kind: str, name: str) -> str:
    """``inline`` or ``attachment`` with the name in ASCII and, for browsers that read it, in UTF-8."""
    return f"{kind}; filename=\"{ascii_filename(name)}\"; filename*=UTF-8''{quote(name, safe='')}"


@bp.get("/attachments/<int:attachment_id>")
@bp.get("/attachments/<int:attachment_id>/<name>")
def download(attachment_id: int, name: str = ""):
    """A file for someone who may see what it belongs to (anyone else signed in: 404; a visitor: the sign-in
    page, which tells nothing either, as it answers for a file that does not exist too). Real PNG, JPEG, GIF and WebP
    images (their content checked again) are shown inline; everything else, SVG included, is a download."""
    session = get_session()
    try:
        attachment = attachment_service.get_viewable(session, attachment_id, viewer())
    except NotFound:
        if viewer() is None:  # perhaps theirs once signed in (a link from an e-mail): the sign-in page first
            return current_app.login_manager.unauthorized()
        raise
    data = attachment_service.read_bytes(session, settings(), attachment)
    if data is None:
        current_app.logger.error("attachment %s (%s) is missing from the %s store", attachment.id,
                                 attachment.sha256, attachment.storage)
        raise NotFound(N_("This file is no longer in the store. The service desk has been told."))
    file_type = allowed_type(attachment.content_type)
    inline = file_type is not None and file_type.inline and detect(data) == attachment.content_type
    response = Response(data, mimetype=attachment.content_type if inline else "application/octet-stream")
    response.headers["Content-Disposition"] = content_disposition("inline" if inline else "attachment",
                                                                  attachment.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = FILE_POLICY
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.post("/kb/images")
@agent_required
def editor_upload():
    """Images for an article, from the editor: stored (owned by the article once it is saved with them) and
    placed in the text. The page script gets JSON and inserts the Markdown at the cursor; without it the
    whole editor form comes here and the editor is shown again with the Markdown added to the text, unsaved."""
    return place_images(uploads_from_request())


def place_chosen_images():
    """For the editor's Save and Preview: images chosen but not uploaded yet are uploaded and placed first
    (the editor is shown again, unsaved, so nothing chosen is dropped); None when none was chosen."""
    uploads = uploads_from_request()
    return place_images(uploads) if uploads else None


def place_images(uploads: list[attachment_service.Upload]):
    """Store the editor's images and answer with their Markdown (JSON), or the editor with it (a page)."""
    session = get_session()
    try:
        files = attachment_service.check_uploads(uploads, settings())
        if not files:
            raise Invalid(N_("Choose an image to upload."))
        for checked in files:
            if not checked.file_type.inline:
                raise Invalid(N_("“%(name)s” is not an image an article can show: use PNG, JPEG, GIF or WebP."),
                              name=checked.name)
        stored = [attachment_service.save(session, settings(), checked, current_user) for checked in files]
    except Invalid as exc:
        session.rollback()
        if wants_json():
            return jsonify(error=translated(exc)), 400
        flash(translated(exc), "error")
        return _editor_again(""), 400
    session.commit()
    placed = [attachment_service.markdown_of(attachment) for attachment in stored]
    if wants_json():
        return jsonify(files=[{"name": a.filename, "url": attachment_service.path_of(a), "markdown": markdown}
                              for a, markdown in zip(stored, placed)])
    flash(_("Image uploaded and placed at the end of the text. Save to keep it in the article."), "success")
    return _editor_again("\n\n".join(placed))


def _editor_again(markdown: str):
    """The editor as it was submitted (the article or the ticket it belongs to, the text kept), with the
    images' Markdown at the end of the text."""
    from .kb import render_editor  # the editor page belongs to the kb views

    session = get_session()
    draft = knowledge.unchecked_draft(request.form)
    if markdown:
        draft.body = f"{draft.body.rstrip()}\n\n{markdown}\n"
    slug = request.form.get("article_slug", "")
    article = session.scalar(select(Article).where(Article.slug == slug)) if slug else None
    ticket_id = parse_id(request.form.get("ticket_id"))
    ticket = ticket_service.get_ticket(session, ticket_id, current_user) if ticket_id else None
    return render_editor(draft, article=article, ticket=ticket, duplicates=[])[0]


def allow_files_in_upload_forms() -> None:
    """Before every request (and before the form is read): the forms that carry files (multipart bodies to
    their routes) may be as large as their files allow; every other request keeps MAX_CONTENT_LENGTH (2 MB)."""
    if request.endpoint in UPLOAD_ENDPOINTS and request.mimetype == "multipart/form-data":
        request.max_content_length = max(settings().request_limit, current_app.config["MAX_CONTENT_LENGTH"])


def object_store_from(config) -> ObjectStore | None:
    """The ``s3`` store of the MESA_S3_* settings (None without a bucket: files stored there before are then
    missing); RuntimeError when MESA_ATTACHMENT_STORE=s3 has no bucket to write to."""
    if not config["MESA_S3_BUCKET"]:
        if config["MESA_ATTACHMENT_STORE"] == "s3":
            raise RuntimeError("MESA_ATTACHMENT_STORE=s3 needs MESA_S3_BUCKET, the bucket that keeps the files "
                               "(credentials come from the AWS_* environment variables or boto3's other sources).")
        return None
    return ObjectStore(config["MESA_S3_BUCKET"], prefix=config["MESA_S3_PREFIX"],
                       endpoint_url=config["MESA_S3_ENDPOINT_URL"], region=config["MESA_S3_REGION"])


def init_app(app: Flask) -> None:
    """The settings and stores, the request size hook (registered before the checks that read the form),
    and the routes."""
    config = app.config
    directory = Path(config["MESA_ATTACHMENTS_DIR"] or Path(app.instance_path) / "attachments")
    app.extensions["mesa_attachments"] = attachment_service.AttachmentSettings(
        max_bytes=config["MESA_ATTACHMENT_MAX_BYTES"], max_files=config["MESA_ATTACHMENT_MAX_FILES"],
        stores=stores_for(directory, object_store_from(config)), write_to=config["MESA_ATTACHMENT_STORE"])
    app.before_request(allow_files_in_upload_forms)
    app.register_blueprint(bp)
    app.jinja_env.globals.update(attachment_path=attachment_service.path_of,
                                 attachment_markdown=attachment_service.markdown_of,
                                 attachment_size=attachment_service.human_size, attachment_inline=shown_inline)


def shown_inline(attachment) -> bool:
    """Whether the file is an image the browser shows (a thumbnail on the page, opened inline)."""
    file_type = allowed_type(attachment.content_type)
    return file_type is not None and file_type.inline
